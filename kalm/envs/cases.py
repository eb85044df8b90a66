"""Seeded cases of a goal level: which goal each episode follows and the reset seed that places its scene.

One scheme serves every consumer (policy evaluation, grounding metrics): :func:`level_cases` draws the
level's goals in cycles, each cycle a shuffled order of all of them, so every goal is used about equally
often; within a cycle, the goals of each kind (``EnvSuite.goal_kind``) are spread evenly, so any prefix of
the cases covers the kinds in proportion to their sizes (a short list still reaches every kind).
Asking for more cases extends the same list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kalm.envs.base import EnvSuite
from kalm.envs.goals import LEVELS, check_level
from kalm.errors import ConfigError


@dataclass(frozen=True)
class EvalCase:
    """One episode: a goal of ``level`` and the environment's reset seed."""

    level: str
    goal_id: str
    seed: int


def level_cases(suite: EnvSuite, level: str, *, episodes: int, seed: int = 0,
                goals: Sequence[str] | None = None) -> list[EvalCase]:
    """The deterministic cases of ``level`` (see the module docstring).

    Args:
        suite: the environment suite.
        level: goal level.
        episodes: number of cases.
        seed: base seed; the same ``(seed, level, episodes)`` always gives the same cases.
        goals: restrict to these goal ids of the level (all when ``None``).
    """
    if episodes < 1:
        raise ConfigError(f"episodes={episodes!r} is invalid; expected a positive integer")
    ids = ([goal.id for goal in suite.goals(check_level(level))] if goals is None
           else [suite.goal(level, goal_id).id for goal_id in goals])
    kinds = [suite.goal_kind(goal_id) for goal_id in ids]
    goal_rng, seed_rng = (np.random.default_rng([seed, LEVELS.index(level), stream]) for stream in (0, 1))
    order = np.concatenate([_spread_cycle(kinds, goal_rng) for _ in range(math.ceil(episodes / len(ids)))])
    seeds = seed_rng.integers(2**31, size=episodes)  # two streams: more episodes extend the same list
    return [EvalCase(level, ids[int(i)], int(s)) for i, s in zip(order[:episodes], seeds, strict=True)]


def _spread_cycle(kinds: list[str], rng: np.random.Generator) -> np.ndarray:
    """A shuffled order of all goal indices in which each kind's goals are evenly spaced (systematic sampling:
    the ``r``-th of a kind's ``n`` goals sits at ``(r + offset) / n`` of the cycle, ties broken at random)."""
    keys = np.empty(len(kinds))
    for kind in dict.fromkeys(kinds):
        members = np.flatnonzero(np.asarray(kinds) == kind)
        keys[rng.permutation(members)] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.lexsort((rng.random(len(kinds)), keys))
