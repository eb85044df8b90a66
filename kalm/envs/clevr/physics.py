"""CLEVR-Robot physics on raw MuJoCo: place the pusher behind a ball and push it in one of 8 directions.

A discrete action ``a`` in ``[0, 40)`` means ball ``a // 8`` pushed in direction ``a % 8``
(:data:`DIRECTIONS`: the 4 axes, then the 4 diagonals). One step teleports the pusher
:data:`PUSH_OFFSET` behind the ball, drives it along the direction for :data:`PUSH_SUBSTEPS` physics
substeps, then parks it off the table and stops every ball (quasi-static pushing: a step's effect
does not leak into the next one).
"""

from __future__ import annotations

from importlib import resources

import mujoco
import numpy as np

from kalm.errors import KalmError

BALL_COLORS = ("red", "blue", "green", "purple", "cyan")
NUM_BALLS = len(BALL_COLORS)

# Direction names follow the reference: behind = +y, front = -y, left = -x, right = +x.
DIRECTION_NAMES = (
    "right",
    "behind",
    "left",
    "front",
    "right-behind",
    "left-behind",
    "left-front",
    "right-front",
)
_DIAGONAL = np.sqrt(0.5)
DIRECTIONS = np.array(
    [
        [1.0, 0.0],
        [0.0, 1.0],
        [-1.0, 0.0],
        [0.0, -1.0],
        [_DIAGONAL, _DIAGONAL],
        [-_DIAGONAL, _DIAGONAL],
        [-_DIAGONAL, -_DIAGONAL],
        [_DIAGONAL, -_DIAGONAL],
    ]
)
NUM_ACTIONS = NUM_BALLS * len(DIRECTIONS)

BALL_RADIUS = 0.05
TABLE_HALF_SIZE = 0.5
"""Balls' centres stay within ``[-TABLE_HALF_SIZE + BALL_RADIUS, TABLE_HALF_SIZE - BALL_RADIUS]``."""
SPAWN_HALF_SIZE = 0.35
SPAWN_MIN_DISTANCE = 0.15
PUSH_OFFSET = 0.15
PUSH_SPEED = 1.0
PUSH_SUBSTEPS = 40
_PARKED = np.array([2.0, 2.0])


def action_index(ball: int, direction: int) -> int:
    """The discrete action that pushes ``ball`` along ``DIRECTIONS[direction]``."""
    return ball * len(DIRECTIONS) + direction


class ClevrPhysics:
    """The MuJoCo model and data of one CLEVR-Robot table, with a push primitive."""

    def __init__(self) -> None:
        xml = resources.files("kalm.envs.clevr").joinpath("scene.xml").read_text()
        self.model = mujoco.MjModel.from_xml_string(xml)
        self.data = mujoco.MjData(self.model)

    @property
    def positions(self) -> np.ndarray:
        """The balls' (x, y), shape ``(5, 2)`` (a copy)."""
        return self.data.qpos[: 2 * NUM_BALLS].reshape(NUM_BALLS, 2).copy()

    def set_positions(self, positions: np.ndarray) -> None:
        """Place the balls at ``positions`` (shape ``(5, 2)``), at rest, with the pusher parked."""
        self.data.qpos[: 2 * NUM_BALLS] = np.asarray(positions, dtype=np.float64).reshape(-1)
        self.data.qpos[2 * NUM_BALLS :] = _PARKED
        self.data.qvel[:] = 0.0
        self.data.ctrl[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def push(self, action: int) -> None:
        """Apply one discrete push action (see the module docstring)."""
        if not 0 <= action < NUM_ACTIONS:
            raise KalmError(
                f"CLEVR-Robot action {action!r} is invalid; expected an integer in [0, {NUM_ACTIONS})"
            )
        ball, direction = divmod(int(action), len(DIRECTIONS))
        unit = DIRECTIONS[direction]
        ball_xy = self.data.qpos[2 * ball : 2 * ball + 2]
        self.data.qpos[2 * NUM_BALLS :] = ball_xy - PUSH_OFFSET * unit
        self.data.qvel[:] = 0.0
        self.data.ctrl[:] = PUSH_SPEED * unit
        mujoco.mj_step(self.model, self.data, nstep=PUSH_SUBSTEPS)
        self.data.qpos[2 * NUM_BALLS :] = _PARKED
        self.data.qvel[:] = 0.0
        self.data.ctrl[:] = 0.0
        mujoco.mj_forward(self.model, self.data)


def sample_positions(rng: np.random.Generator) -> np.ndarray:
    """Ball positions spread over the spawn square, pairwise at least ``SPAWN_MIN_DISTANCE`` apart."""
    positions = np.empty((NUM_BALLS, 2))
    placed = 0
    while placed < NUM_BALLS:
        candidate = rng.uniform(-SPAWN_HALF_SIZE, SPAWN_HALF_SIZE, size=2)
        if (
            placed == 0
            or np.min(np.linalg.norm(positions[:placed] - candidate, axis=1)) >= SPAWN_MIN_DISTANCE
        ):
            positions[placed] = candidate
            placed += 1
    return positions
