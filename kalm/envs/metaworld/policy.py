"""The behaviour policy of the Meta-World suite: Meta-World's scripted experts, read off the 91-d state.

Each task's expert (``metaworld.policies``) reads a 39-d Meta-World observation; the policy rebuilds that
observation from the 91-d one (the gripper, the expert's object slot(s), the target location) with index
maps fixed per task. The composed tasks chain two experts, switching on the state-only judge of the first
sub-goal: make-coffee runs coffee-push until the mug is under the spout, then coffee-button;
locked-door-open runs door-unlock until the lock is open, then door-open, after lifting the hand clear of the
lock (door-open's expert expects to approach the handle from above). Gaussian noise of standard deviation
``noise`` is added to every action, which is then clipped to [-1, 1].
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

import numpy as np

from kalm.envs.metaworld import entities as E
from kalm.envs.metaworld import judges
from kalm.envs.metaworld.tasks import Expert, get_task
from kalm.errors import KalmError

_LIFT = np.array([0.0, -0.5, 1.0, 1.0])
"""Up and back, fingers open: clears the lock before door-open's expert takes over."""


class ExpertPolicy:
    """``policy(observation, task) -> action``: the task's scripted expert plus Gaussian action noise.

    Args:
        noise: standard deviation of the Gaussian noise added to each action component (0 = the pure expert).
        rng: random generator of the noise.
    """

    def __init__(self, *, noise: float = 0.1, rng: np.random.Generator | None = None) -> None:
        if not noise >= 0.0:
            raise KalmError(
                f"behaviour policy noise {noise!r} is invalid; expected a standard deviation >= 0"
            )
        self.noise = float(noise)
        self.rng = rng if rng is not None else np.random.default_rng()

    def __call__(self, observation: np.ndarray, task: str) -> np.ndarray:
        observation = np.asarray(observation, dtype=np.float64)
        action = expert_action(observation, task)
        if self.noise:
            action = action + self.noise * self.rng.standard_normal(4)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def expert_action(observation: np.ndarray, task: str) -> np.ndarray:
    """The noiseless scripted action for one 91-d observation of ``task``."""
    experts = get_task(task).experts
    if task == "make-coffee":
        expert = experts[int(judges.mug_in_place(observation))]
    elif task == "locked-door-open":
        if not judges.lock_open(observation):
            expert = experts[0]
        elif _lock_in_the_way(observation):
            return _LIFT.copy()
        else:
            expert = experts[1]
    else:
        expert = experts[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the experts warn whenever their gain saturates an action
        action = _scripted(expert.policy).get_action(expert_observation(observation, expert))
    return np.asarray(action, dtype=np.float64)


def expert_observation(observation: np.ndarray, expert: Expert) -> np.ndarray:
    """The 39-d Meta-World observation ``expert`` expects, rebuilt from a 91-d one."""
    raw = np.zeros(39)
    raw[0:4] = observation[0:4]
    for index, entity in enumerate(expert.entities):
        raw[4 + 7 * index : 11 + 7 * index] = observation[E.slot_index(entity)]
    raw[18:36] = raw[0:18]  # Meta-World's previous frame; no expert reads it
    raw[36:39] = observation[E.TARGET]
    return raw


def _lock_in_the_way(observation: np.ndarray) -> bool:
    """Door shut, hand still beside the handle at the lock, below the height door-open approaches from."""
    hand, handle = observation[E.GRIPPER], observation[E.position_index("handle")]
    shut = abs(float(judges.door_angle(observation))) < 0.05
    return bool(shut and hand[0] < handle[0] - 0.04 and hand[2] < handle[2] + 0.12)


@cache
def _scripted(name: str) -> Any:
    from metaworld import policies

    return getattr(policies, name)()
