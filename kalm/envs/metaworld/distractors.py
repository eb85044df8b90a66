"""Test-time distractor entities: irrelevant slots filled with plausible resting poses (reference §5.2).

The authors fill one slot the task leaves empty with a state from a file they did not release
(``noisy_state_test.npy``). kalm draws the pose instead from a real reset of the first task whose scene holds
that entity (``tasks.resting_source``): a lock where door-unlock puts it, a soccer ball where soccer puts it.
The distractor only appears in the observation; it is not simulated, so it can neither block nor be touched.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kalm.envs.metaworld import entities as E
from kalm.envs.metaworld.scene import TaskScene
from kalm.envs.metaworld.tasks import Task, resting_source


def sample_distractors(
    task: Task, count: int, rng: np.random.Generator, scene_of: Callable[[Task], TaskScene]
) -> dict[str, np.ndarray]:
    """``count`` entities absent from ``task``'s scene, each with a 7-d resting pose.

    Args:
        task: the task of the episode; its own entities are never chosen.
        count: how many distinct distractor entities to draw.
        rng: random generator for the choice of entities and their poses.
        scene_of: returns the (cached) scene of a task.
    """
    free = [entity for entity in E.ENTITIES if entity not in task.entities]
    chosen = rng.choice(len(free), size=min(count, len(free)), replace=False)
    poses = {}
    for index in sorted(int(i) for i in chosen):
        entity = free[index]
        observation = scene_of(resting_source(entity)).reset(int(rng.integers(2**31)))
        poses[entity] = observation[E.slot_index(entity)].copy()
    return poses


def apply_distractors(observation: np.ndarray, poses: dict[str, np.ndarray]) -> np.ndarray:
    """Write the distractor poses into their slots of a 91-d observation (in place); returns it."""
    for entity, pose in poses.items():
        observation[E.slot_index(entity)] = pose
    return observation
