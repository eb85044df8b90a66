"""Success rate per goal level in the real environment, with fixed seeds and a Wilson interval.

For each level, :func:`evaluation_cases` draws a deterministic list of ``(goal, reset seed)`` cases from
``(seed, level)``: the level's goals in a shuffled order, repeated until ``episodes`` cases (so every
goal is evaluated about equally often); asking for more episodes extends the same list. The policy sees
the environment's own instruction, ``info["instruction"]``, a sentence of that level, encoded by the
goal encoder it was trained with.
Episodes run in lockstep over ``num_envs`` environments with one batched policy forward per step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from kalm.envs import LEVELS, get_suite
from kalm.envs.base import EnvSuite
from kalm.envs.goals import check_level
from kalm.errors import ConfigError
from kalm.rl.goal_encoder import GoalEncoder
from kalm.rl.networks import Policy
from kalm.rl.policy import act

log = logging.getLogger(__name__)
Z_95 = 1.959963984540054


@dataclass(frozen=True)
class EvalCase:
    """One evaluation episode: a goal of ``level`` and the environment's reset seed."""

    level: str
    goal_id: str
    seed: int


@dataclass(frozen=True)
class LevelResult:
    """Success counts of one level with the rate and its 95 % Wilson interval."""

    level: str
    episodes: int
    successes: int
    rate: float
    ci_low: float
    ci_high: float
    outcomes: tuple[bool, ...] = field(repr=False, default=())


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (``(0, 1)`` for no trials)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def evaluation_cases(
    suite: EnvSuite, level: str, *, episodes: int, seed: int = 0, goals: Sequence[str] | None = None
) -> list[EvalCase]:
    """The deterministic evaluation cases of ``level`` (see the module docstring).

    Args:
        suite: the environment suite.
        level: goal level.
        episodes: number of cases.
        seed: base seed; the same ``(seed, level, episodes)`` always gives the same cases.
        goals: restrict to these goal ids of the level (all when ``None``).
    """
    if episodes < 1:
        raise ConfigError(f"episodes={episodes!r} is invalid; expected a positive integer")
    ids = (
        [goal.id for goal in suite.goals(check_level(level))]
        if goals is None
        else [suite.goal(level, goal_id).id for goal_id in goals]
    )
    goal_rng, seed_rng = (np.random.default_rng([seed, LEVELS.index(level), stream]) for stream in (0, 1))
    order = np.concatenate([goal_rng.permutation(len(ids)) for _ in range(math.ceil(episodes / len(ids)))])
    seeds = seed_rng.integers(2**31, size=episodes)  # two streams: more episodes extend the same list
    return [EvalCase(level, ids[int(i)], int(s)) for i, s in zip(order[:episodes], seeds, strict=True)]


def run_cases(
    policy: Policy,
    suite: EnvSuite,
    cases: Sequence[EvalCase],
    encoder: GoalEncoder,
    *,
    num_envs: int = 8,
    progress: bool = False,
) -> list[bool]:
    """Roll ``policy`` out on every case; whether each episode reached its goal, in case order."""
    envs = [suite.make() for _ in range(max(1, min(num_envs, len(cases))))]
    results: list[bool | None] = [None] * len(cases)
    slots: list[dict[str, Any] | None] = [None] * len(envs)
    queue = iter(range(len(cases)))
    bar = tqdm(
        total=len(cases),
        desc=f"evaluate {cases[0].level if cases else ''}",
        unit="ep",
        disable=not progress or None,
    )
    for slot in range(len(envs)):
        slots[slot] = _start(envs[slot], cases, queue, encoder)
    while any(slots):
        active = [slot for slot, state in enumerate(slots) if state is not None]
        states = torch.as_tensor(np.stack([slots[s]["observation"] for s in active]), dtype=torch.float32)  # type: ignore[index]
        goals = torch.as_tensor(np.stack([slots[s]["goal"] for s in active]))  # type: ignore[index]
        actions = act(policy, states, goals).cpu().numpy()
        for slot, action in zip(active, actions, strict=True):
            state = slots[slot]
            assert state is not None
            observation, _, terminated, truncated, info = envs[slot].step(
                int(action) if policy.spec.discrete else action.astype(np.float32)
            )
            state["observation"] = observation
            if terminated or truncated:
                results[state["case"]] = bool(info["success"])
                bar.update(1)
                slots[slot] = _start(envs[slot], cases, queue, encoder)
    bar.close()
    for env in envs:
        env.close()
    return [bool(result) for result in results]


def _start(env: Any, cases: Sequence[EvalCase], queue: Any, encoder: GoalEncoder) -> dict[str, Any] | None:
    index = next(queue, None)
    if index is None:
        return None
    case = cases[index]
    observation, info = env.reset(seed=case.seed, options={"goal": case.goal_id, "level": case.level})
    return {
        "case": index,
        "observation": observation,
        "goal": encoder.encode([info["instruction"]])[0],
        "instruction": info["instruction"],
    }


def evaluate_policy(
    policy: Policy,
    suite: EnvSuite | str,
    encoder: GoalEncoder,
    *,
    levels: Sequence[str] = LEVELS,
    episodes: int = 100,
    seed: int = 0,
    num_envs: int = 8,
    goals: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, LevelResult]:
    """Success rate of ``policy`` per level (see the module docstring).

    Returns:
        level -> :class:`LevelResult`, in the order of ``levels``.
    """
    suite = get_suite(suite) if isinstance(suite, str) else suite
    _prefetch_sentences(suite, levels, encoder, goals)
    results = {}
    for level in levels:
        cases = evaluation_cases(suite, level, episodes=episodes, seed=seed, goals=goals)
        outcomes = run_cases(policy, suite, cases, encoder, num_envs=num_envs, progress=progress)
        successes = sum(outcomes)
        results[level] = level_result(level, outcomes)
        log.info("%s: %d/%d successes", level, successes, len(outcomes))
    return results


def level_result(level: str, outcomes: Sequence[bool]) -> LevelResult:
    """The rate and Wilson interval of a level's episode outcomes."""
    successes = sum(bool(outcome) for outcome in outcomes)
    low, high = wilson_interval(successes, len(outcomes))
    return LevelResult(level, len(outcomes), successes, successes / max(1, len(outcomes)), low, high,
                       tuple(bool(outcome) for outcome in outcomes))


def pool(runs: Sequence[dict[str, LevelResult]]) -> dict[str, LevelResult]:
    """The results of several policies (e.g. training seeds) on the same cases, as one: outcomes concatenated."""
    return {level: level_result(level, [o for run in runs for o in run[level].outcomes]) for level in runs[0]}


def _prefetch_sentences(
    suite: EnvSuite, levels: Sequence[str], encoder: GoalEncoder, goals: Sequence[str] | None
) -> None:
    """Encode every sentence the environment may show in one batch (cached), not one reset at a time."""
    sentences = [
        s
        for level in levels
        for goal in suite.goals(level)
        if goals is None or goal.id in goals
        for s in goal.sentences
    ]
    encoder.encode(sentences)


def result_dict(result: LevelResult) -> dict[str, Any]:
    """A JSON-ready dict of a level result (outcomes as 0/1)."""
    data = asdict(result)
    data["outcomes"] = [int(o) for o in result.outcomes]
    return data
