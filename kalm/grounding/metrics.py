"""The grounding metrics the paper reports, computed with the real environment's judges.

- explanation accuracy (§4.3, Fig. 7): the model describes real rollouts; a description counts when the
  environment interprets it as the rollout's true goal (judged on the structured goal, not on strings);
- match rate (Table 1): for goals of a level, the fraction of imagined rollouts (from real initial
  states) in which some state satisfies the goal's judge, counting only rollouts that stay plausible
  (``EnvSuite.implausibility``) up to that state: an untrained model's noise must not "match".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from kalm.envs.base import EnvSuite


def explanation_accuracy(model: Any, suite: EnvSuite, episodes: Sequence[dict[str, Any]], *,
                         batch_size: int = 32) -> float:
    """Fraction of ``episodes`` (rows with observations, actions, goal_id) explained as their own goal."""
    if not episodes:
        return float("nan")
    hits = 0
    for start in range(0, len(episodes), batch_size):
        chunk = episodes[start : start + batch_size]
        texts = model.explain([row["observations"] for row in chunk], [row["actions"] for row in chunk])
        hits += sum(suite.interpret(text) == row["goal_id"] for text, row in zip(texts, chunk, strict=True))
    return hits / len(episodes)


def judge_stop(suite: EnvSuite, goal_ids: Sequence[str], *, implausible: bool = False) -> Any:
    """A ``generate_rollouts`` stop callback: rollout ``b`` stops when its latest state achieves its goal.

    With ``implausible``, a rollout also stops at its first implausible state (``EnvSuite.implausibility``
    of its last step): the filter drops it whatever follows, so decoding further would be wasted.
    """

    def stop(observations: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        states = observations.detach().cpu().numpy()
        done = [bool(suite.success(goal_ids[row], states[b])[-1])
                or (implausible and suite.implausibility(states[b, -2:]) is not None)
                for b, row in enumerate(rows.tolist())]
        return torch.tensor(done)

    return stop


def state_projection(suite: EnvSuite) -> Any:
    """A ``generate_rollouts`` projection callback: ``EnvSuite.project_states`` on tensors (``None`` for an
    environment that keeps decoded states as they are, so decoding does no per-step copy for it)."""
    if type(suite).project_states is EnvSuite.project_states:
        return None

    def project(states: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
        projected = suite.project_states(states.detach().cpu().numpy(), initial.detach().cpu().numpy())
        return torch.as_tensor(projected, dtype=states.dtype, device=states.device)

    return project


def level_cases(suite: EnvSuite, level: str, count: int, *, seed: int = 0) -> list[tuple[str, str, np.ndarray]]:
    """``count`` deterministic (goal id, sentence, initial state) cases of ``level`` from seeded env resets."""
    env = suite.make()
    goals = suite.goals(level)
    cases = []
    for index in range(count):
        goal = goals[(index * 7919) % len(goals)]  # spread over the level's goals
        observation, info = env.reset(seed=seed * 100_003 + index, options={"goal": goal.id, "level": level})
        cases.append((goal.id, info["instruction"], observation))
    env.close()
    return cases


def match_rate(model: Any, suite: EnvSuite, level: str, *, count: int = 16, horizon: int | None = None,
               seed: int = 0, batch_size: int = 64) -> float:
    """Fraction of imagined rollouts for ``count`` goals of ``level`` that reach their goal (greedy decoding)."""
    cases = level_cases(suite, level, count, seed=seed)
    matched = 0
    for start in range(0, len(cases), batch_size):
        chunk = cases[start : start + batch_size]
        goal_ids = [goal_id for goal_id, _, _ in chunk]
        rollouts = model.generate_rollouts(
            [sentence for _, sentence, _ in chunk], np.stack([state for _, _, state in chunk]),
            horizon=horizon or suite.spec.horizon, stop=judge_stop(suite, goal_ids, implausible=True),
            project=state_projection(suite))
        matched += sum(
            bool(rollouts.stopped[b]) and suite.implausibility(rollouts.rollout(b)[0]) is None
            for b in range(len(chunk))
        )
    return matched / len(cases)
