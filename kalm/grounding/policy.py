"""The grounded LM as a policy in the real environment (the paper's Fig. 5 comparison, "LLM as policy").

The model is prompted with the goal and the real initial state, as for imagination; its action head picks
each action (greedy), the environment steps, and the *real* next state is fed back, so the model never
runs on its own imagined states. Episodes of a batch run in lockstep on one KV cache; an episode that ends
leaves the batch. The outcome is judged by the environment under the level's protocol, on the same cases
(``kalm.envs.cases``) as the offline-RL policies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from kalm.envs.base import EnvSuite
from kalm.envs.cases import EvalCase
from kalm.grounding.generation import Decoder, pick_action

LLM_POLICY = "LLM as policy"
"""The name of the grounded LM's row in evaluation reports."""


@torch.no_grad()
def llm_policy_outcomes(
    model: Any, suite: EnvSuite, cases: Sequence[EvalCase], *, batch_size: int = 32, progress: bool = False
) -> list[bool]:
    """Whether the grounded LM, acting in the real environment, reaches each case's goal (in case order)."""
    codec, device = model.codec, next(model.parameters()).device
    outcomes: list[bool] = []
    bar = tqdm(total=len(cases), desc="evaluate LLM as policy", unit="ep", disable=not progress or None)
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        envs = [suite.make() for _ in chunk]
        resets = [
            env.reset(
                seed=case.seed,
                options={"goal": case.goal_id, "level": case.level, **suite.evaluation_options(case.level)},
            )
            for env, case in zip(envs, chunk, strict=True)
        ]
        sentences = [
            case.sentence or info["instruction"] for case, (_, info) in zip(chunk, resets, strict=True)
        ]
        batch = model.collate(
            [
                model.prompts.goal_prompt(sentence, observation)
                for sentence, (observation, _) in zip(sentences, resets, strict=True)
            ],
            left_pad=True,
        ).to(device)
        decoder = Decoder(model, model.embed(batch), batch.attention_mask, batch.position_ids, use_cache=True)
        results = [False] * len(chunk)
        rows = list(range(len(chunk)))  # the episode of each row still in the decoder's batch
        while rows:
            actions = pick_action(codec, codec.action_logits(decoder.last), True, 1.0, None)
            going, states = [], []
            for row, action in zip(rows, actions.cpu().numpy(), strict=True):
                observation, _, terminated, truncated, info = envs[row].step(
                    int(action) if codec.discrete else action.astype(np.float32)
                )
                going.append(not (terminated or truncated))
                if going[-1]:
                    states.append(observation)
                else:
                    results[row] = bool(info["success"])
            if not any(going):
                break
            decoder.append(codec.embed_actions(actions))
            keep = torch.tensor(going, device=device)
            if not bool(keep.all()):
                decoder.keep(keep)
            rows = [row for row, still in zip(rows, going, strict=True) if still]
            decoder.append(
                codec.embed_states(torch.as_tensor(np.stack(states), dtype=torch.float32, device=device))
            )
        for env in envs:
            env.close()
        outcomes += results
        bar.update(len(chunk))
    bar.close()
    return outcomes


def evaluate_llm_policy(
    model: Any,
    suite: EnvSuite,
    *,
    levels: Sequence[str],
    episodes: int,
    seeds: Sequence[int] = (0,),
    batch_size: int = 32,
    progress: bool = False,
) -> dict[str, Any]:
    """The LLM-as-policy success rate per level on the first ``episodes`` cases of each seed (Wilson
    intervals: one fixed policy on independent cases)."""
    from kalm.rl.evaluation import column_cases, level_result

    results = {}
    for level in levels:
        cases = [case for seed in seeds for case in column_cases(suite, level, episodes=episodes, seed=seed)]
        outcomes = llm_policy_outcomes(model, suite, cases, batch_size=batch_size, progress=progress)
        results[level] = level_result(
            level,
            outcomes,
            [case.goal_id for case in cases],
            [seed for seed in seeds for _ in range(episodes)],
            interval="wilson",
        )
    return results
