"""The work plan of an imagination run: which goal, sentence and initial state every rollout gets.

The plan depends only on the environment, the levels, ``per_goal``, the seed and the batch size, never on
how many ranks run it; rollouts are grouped into fixed batches, batch ``i`` is decoded identically
whichever rank takes it (its sampling generator is seeded by ``(seed, i)``), and rank ``r`` of ``n``
takes batches ``r, r + n, ...``. So a sharded run produces exactly the unsharded dataset, and a
resumed run redoes only the batches that have no output yet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kalm.envs.base import EnvSuite
from kalm.envs.cases import level_cases
from kalm.envs.goals import check_level


@dataclass(frozen=True)
class Item:
    """One rollout to imagine."""

    index: int
    level: str
    goal_id: str
    sentence: str
    reset_seed: int


def plan_items(
    suite: EnvSuite, levels: list[str], *, per_goal: int | dict[str, int], seed: int
) -> list[Item]:
    """``per_goal`` rollouts (one count, or one per level) for every goal of every level, each with its own
    sentence and reset seed.

    The cases are ``kalm.envs.cases.level_cases`` with ``scheme="per_goal"``: sentences cycle through the
    goal's prompt phrasings (the other half is held out for evaluation); reset seeds come from
    ``(seed, level's position in levels, goal, k)``.
    """
    items: list[Item] = []
    for level_index, level in enumerate(check_level(level) for level in levels):
        count = per_goal[level] if isinstance(per_goal, dict) else per_goal
        for case in level_cases(
            suite, level, episodes=count, seed=seed, scheme="per_goal", stream=level_index
        ):
            assert case.sentence is not None  # per_goal cases carry their prompt sentence
            items.append(Item(len(items), level, case.goal_id, case.sentence, case.seed))
    return items


def batches(items: list[Item], batch_size: int) -> list[list[Item]]:
    """Fixed batches of the plan (the unit of sharding and of resuming)."""
    return [items[start : start + batch_size] for start in range(0, len(items), batch_size)]


def shard(batch_count: int, rank: int, world_size: int) -> list[int]:
    """The batch indices rank ``rank`` of ``world_size`` decodes."""
    return list(range(rank, batch_count, world_size))


def initial_states(suite: EnvSuite, items: list[Item]) -> np.ndarray:
    """Real initial states: a seeded reset of the environment for each item's goal."""
    env = suite.make()
    states = [
        env.reset(seed=item.reset_seed, options={"goal": item.goal_id, "level": item.level})[0]
        for item in items
    ]
    env.close()
    return np.stack(states)
