"""A scripted behaviour policy for CLEVR-Robot: near-expert pushes with configurable noise.

For a relation goal it steers the source ball to a spot ``TARGET_GAP`` from the reference ball in the
named direction, choosing among the 8 pushes of the source ball the one whose predicted landing spot
is closest to that spot without running into another ball. For a one-step goal it pushes the named
ball along the direction. With probability ``noise`` it takes a uniformly random action instead.
"""

from __future__ import annotations

import numpy as np

from kalm.envs.clevr.judges import positions
from kalm.envs.clevr.physics import BALL_RADIUS, DIRECTIONS, NUM_ACTIONS, action_index
from kalm.envs.clevr.specs import UNIT, GoalSpec, Relation, Step
from kalm.errors import KalmError

TARGET_GAP = 0.22
PUSH_LENGTH = 0.127
"""Distance a ball travels under one push (measured on the physics; see ``bench/env_throughput.py``)."""
_COLLISION_PENALTY = 1.0


class ScriptedPolicy:
    """``policy(observation, spec) -> action`` for relation and one-step goals."""

    def __init__(self, *, noise: float = 0.1, rng: np.random.Generator | None = None) -> None:
        if not 0.0 <= noise <= 1.0:
            raise KalmError(f"behaviour policy noise {noise!r} is invalid; expected a probability in [0, 1]")
        self.noise = noise
        self.rng = rng if rng is not None else np.random.default_rng()

    def __call__(self, observation: np.ndarray, spec: GoalSpec) -> int:
        if self.noise and self.rng.random() < self.noise:
            return int(self.rng.integers(NUM_ACTIONS))
        balls = positions(observation)
        if isinstance(spec, Step):
            return action_index(spec.ball, _direction_index(UNIT[spec.direction]))
        if isinstance(spec, Relation):
            target = balls[spec.dst] + TARGET_GAP * np.asarray(UNIT[spec.direction])
            return action_index(spec.src, _best_push(balls, spec.src, target))
        raise KalmError(
            f"the scripted CLEVR-Robot policy handles relation and one-step goals, not {spec.id!r}"
        )


def _best_push(balls: np.ndarray, ball: int, target: np.ndarray) -> int:
    landing = balls[ball] + PUSH_LENGTH * DIRECTIONS  # (8, 2)
    cost = np.linalg.norm(landing - target, axis=1)
    others = np.delete(balls, ball, axis=0)
    clearance = np.linalg.norm(landing[:, None] - others[None], axis=-1).min(axis=1)
    cost += _COLLISION_PENALTY * (clearance < 2.2 * BALL_RADIUS)
    return int(np.argmin(cost))


def _direction_index(unit: tuple[float, float]) -> int:
    return int(np.argmax(DIRECTIONS @ np.asarray(unit)))
