"""The grounding metrics the paper reports, and diagnostics that tell knowledge from chance.

- explanation (§4.3, Fig. 7): the model describes real rollouts that reached their goal; a description
  counts only when the environment's strict interpreter (``EnvSuite.interpret``) reads exactly the rollout's
  goal from it. Per-slot accuracy (``EnvSuite.goal_slots``/``read_slots``: CLEVR-Robot's source ball,
  reference ball, direction) shows what part the model gets, and each comes with the accuracy of the best
  constant answer on the same episodes, so chance and knowledge look different;
- action agreement: the model's first action, decoded freely from a goal prompt and a real initial state
  (not teacher-forced), against the behaviour policy's action in that state, per criterion of
  ``EnvSuite.action_agreement``, next to a uniformly random action's agreement on the same cases;
- match rate (Table 1): for goals of a level (cases from ``kalm.envs.cases``, so every kind of goal is
  covered), the fraction of imagined rollouts (from real initial states) that reach their goal under the
  level's protocol (``EnvSuite.outcome``: before any failure, within the level's horizon), counting only
  rollouts that stay plausible (``EnvSuite.implausibility``): an untrained model's noise must not "match".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from kalm.envs.base import EnvSuite
from kalm.envs.cases import level_cases
from kalm.errors import KalmError


def explanation_cases(rows: Iterable[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """The first ``count`` trajectories of ``rows`` (held-out episodes in dataset order) that reached their
    goal, each read once: a hindsight copy (a later row with its parent's ``episode_id``) is skipped, so
    relabelling the real data leaves these cases as they were. A failed or exploring episode shows no goal to
    read back."""
    cases: list[dict[str, Any]] = []
    seen: set[int] = set()
    for row in rows:
        if len(cases) == count:
            break
        if row["episode_id"] in seen:
            continue
        seen.add(row["episode_id"])
        if row["success"]:
            cases.append(row)
    return cases


def explanation_metrics(
    model: Any, suite: EnvSuite, episodes: Sequence[dict[str, Any]], *, batch_size: int = 32
) -> dict[str, float]:
    """Strict explanation accuracy of ``episodes`` (rows with observations, actions, goal_id), per-slot
    accuracy, and the best constant answer's accuracy for each (``.../constant``); empty without episodes."""
    if not episodes:
        return {}
    texts: list[str] = []
    for start in range(0, len(episodes), batch_size):
        chunk = episodes[start : start + batch_size]
        texts += model.explain([row["observations"] for row in chunk], [row["actions"] for row in chunk])
    goals = [str(row["goal_id"]) for row in episodes]
    metrics = {
        "explanation_accuracy": _share(
            suite.interpret(text) == goal for text, goal in zip(texts, goals, strict=True)
        ),
        "explanation_accuracy/constant": _best_constant(goals),
    }
    truths = [suite.goal_slots(goal) for goal in goals]
    read = [suite.read_slots(text) for text in texts]
    for slot in truths[0]:
        key = "explanation_slot/" + slot.replace(" ", "_")
        metrics[key] = _share(r.get(slot) == t[slot] for r, t in zip(read, truths, strict=True))
        metrics[key + "/constant"] = _best_constant([t[slot] for t in truths])
    return metrics


def explanation_reliance(
    model: Any, suite: EnvSuite, episodes: Sequence[dict[str, Any]], *, batch_size: int = 32
) -> dict[str, float]:
    """How much of its goal the model reads from a rollout: the teacher-forced cross-entropy of each episode's
    goal (its first training sentence, in nats per sentence) given the episode's own rollout, and given the
    rollout of the next episode that has another goal (``.../other_rollout``). ``.../from_rollout`` is the
    difference: about 0 for a model that ignores the rollout, whatever its wording loss. Empty when no two
    episodes have different goals."""
    from kalm.grounding.prompts import Task

    goals = [str(row["goal_id"]) for row in episodes]
    pairs = []
    for i, goal in enumerate(goals):
        others = [j for j in (*range(i + 1, len(goals)), *range(i)) if goals[j] != goal]
        if others:
            pairs.append((i, others[0]))
    if not pairs:
        return {}
    sentences = [suite.goal(str(row["level"]), str(row["goal_id"])).sentences[0] for row in episodes]

    def sentence_losses(rollouts: list[int]) -> torch.Tensor:
        totals = []
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            examples = [
                model.prompts.encode(
                    Task.ROLLOUT_TO_GOAL,
                    goal=sentences[i],
                    states=np.asarray(episodes[j]["observations"]),
                    actions=np.asarray(episodes[j]["actions"]),
                )
                for (i, _), j in zip(chunk, rollouts[start : start + batch_size], strict=True)
            ]
            batch = model.collate(examples).to(next(model.parameters()).device)
            with torch.no_grad():
                losses = model(batch).text_losses.float().cpu()
            totals += [part.sum() for part in losses.split(batch.text_target_mask.sum(1).cpu().tolist())]
        return torch.stack(totals)

    own = sentence_losses([i for i, _ in pairs])
    other = sentence_losses([j for _, j in pairs])
    return {
        "explanation_loss": float(own.mean()),
        "explanation_loss/other_rollout": float(other.mean()),
        "explanation_loss/from_rollout": float((other - own).mean()),
    }


def action_agreement(
    model: Any, suite: EnvSuite, level: str, *, count: int = 64, seed: int = 0, batch_size: int = 64
) -> dict[str, float]:
    """How often the model's free-running first action agrees with the behaviour policy's (noise 0) on
    ``count`` cases of ``level``, per criterion, with a uniformly random action's agreement (``.../chance``);
    empty for a level the behaviour policy cannot act on (e.g. CLEVR-Robot's compound goals)."""
    cases = level_cases(suite, level, episodes=count, seed=seed)
    env = suite.make()
    starts = [env.reset(seed=case.seed, options={"goal": case.goal_id, "level": level}) for case in cases]
    env.close()
    expert = suite.behaviour_policy(noise=0.0, rng=np.random.default_rng(seed))
    try:
        reference = [
            expert(observation, case.goal_id) for (observation, _), case in zip(starts, cases, strict=True)
        ]
    except KalmError:
        return {}
    predicted = []
    for start in range(0, len(cases), batch_size):
        chunk = starts[start : start + batch_size]
        decoded = model.generate_rollouts(
            [info["instruction"] for _, info in chunk],
            np.stack([observation for observation, _ in chunk]),
            horizon=1,
        )
        predicted += list(decoded.actions[:, 0])
    rng = np.random.default_rng([seed, 1])
    uniform = suite.floor_policies()["uniform random"](rng)
    guesses = [
        uniform(observation, case.goal_id) for (observation, _), case in zip(starts, cases, strict=True)
    ]
    metrics: dict[str, float] = {}
    for name, actions in (("", predicted), ("/chance", guesses)):
        agreements = [suite.action_agreement(a, r) for a, r in zip(actions, reference, strict=True)]
        for criterion in agreements[0]:
            key = f"action_agreement/{level}/{criterion.replace(' ', '_')}{name}"
            metrics[key] = _share(agreement[criterion] for agreement in agreements)
    return metrics


def _share(flags: Any) -> float:
    values = [bool(flag) for flag in flags]
    return sum(values) / len(values) if values else float("nan")


def _best_constant(values: Sequence[str]) -> float:
    """The accuracy of always answering the most common value."""
    return Counter(values).most_common(1)[0][1] / len(values) if values else float("nan")


def judge_stop(
    suite: EnvSuite,
    goal_ids: Sequence[str],
    levels: Sequence[str],
    *,
    implausible: bool = False,
    horizon: int | None = None,
) -> Any:
    """A ``generate_rollouts`` stop callback: rollout ``b`` stops where its level's protocol ends an episode:
    its latest state achieves or fails its goal, or it took the level's horizon of actions (at most
    ``horizon``).

    With ``implausible``, a rollout also stops at its first implausible state (``EnvSuite.implausibility``
    of its last step): the filter drops it whatever follows, so decoding further would be wasted.
    """
    limits = {level: min(suite.protocol(level).horizon, horizon or 2**31) for level in set(levels)}

    def stop(observations: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        states = observations.detach().cpu().numpy()
        steps = states.shape[1] - 1
        done = []
        for b, row in enumerate(rows.tolist()):
            ends = states[b, [0, -1]]  # judges read a state against the rollout's first one
            done.append(
                steps >= limits[levels[row]]
                or bool(suite.success(goal_ids[row], ends)[0] or suite.failure(goal_ids[row], ends)[0])
                or (implausible and suite.implausibility(states[b, -2:]) is not None)
            )
        return torch.tensor(done)

    return stop


def decoding_horizon(suite: EnvSuite, levels: Sequence[str], horizon: int | None = None) -> int:
    """The most actions any rollout of ``levels`` may take: the longest level horizon, capped by
    ``horizon``."""
    longest = max(suite.protocol(level).horizon for level in levels)
    return min(longest, horizon) if horizon else longest


def state_projection(suite: EnvSuite) -> Any:
    """A ``generate_rollouts`` projection callback: ``EnvSuite.project_states`` on tensors (``None`` for an
    environment that keeps decoded states as they are, so decoding does no per-step copy for it)."""
    if type(suite).project_states is EnvSuite.project_states:
        return None
    if type(suite).project_state_tensors is not EnvSuite.project_state_tensors:
        return suite.project_state_tensors  # on the decoding device: no host copy per decoded state

    def project(states: torch.Tensor, initial: torch.Tensor) -> torch.Tensor:
        projected = suite.project_states(states.detach().cpu().numpy(), initial.detach().cpu().numpy())
        return torch.as_tensor(projected, dtype=states.dtype, device=states.device)

    return project


def match_rate(
    model: Any,
    suite: EnvSuite,
    level: str,
    *,
    count: int = 16,
    horizon: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
) -> float:
    """Fraction of imagined rollouts for ``count`` cases of ``level`` that reach their goal under the level's
    protocol (greedy decoding, at most ``horizon`` actions when given) and stay plausible."""
    cases = level_cases(suite, level, episodes=count, seed=seed)
    env = suite.make()
    starts = [env.reset(seed=case.seed, options={"goal": case.goal_id, "level": level}) for case in cases]
    env.close()
    matched = 0
    for start in range(0, len(cases), batch_size):
        chunk, begun = cases[start : start + batch_size], starts[start : start + batch_size]
        goal_ids = [case.goal_id for case in chunk]
        rollouts = model.generate_rollouts(
            [info["instruction"] for _, info in begun],
            np.stack([observation for observation, _ in begun]),
            horizon=decoding_horizon(suite, [level], horizon),
            stop=judge_stop(suite, goal_ids, [level] * len(chunk), implausible=True, horizon=horizon),
            project=state_projection(suite),
        )
        for b, goal_id in enumerate(goal_ids):
            observations = rollouts.rollout(b)[0]
            matched += (
                suite.outcome(goal_id, level, observations).success
                and suite.implausibility(observations) is None
            )
    return matched / len(cases)
