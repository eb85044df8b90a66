"""A 5 x 5 grid world as a kalm environment plugin: reach a cell (or a row) said in words.

Observation: the agent's ``(column, row)`` as float32. Action: ``Discrete(4)`` (up, down, left, right; a move
into the wall stays put). Goals per level: ``train`` and ``rephrase`` are the cells whose column + row is even
(rephrase in new words), ``easy`` the other cells, ``hard`` a whole row. Registered with kalm through the
``kalm.envs`` entry point in this package's ``pyproject.toml``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import gymnasium as gym
import numpy as np

from kalm.data import RolloutSpec
from kalm.envs import EnvSuite, Goal

SIZE = 5
HORIZON = 12
MOVES = np.array([(0, 1), (0, -1), (-1, 0), (1, 0)])  # up, down, left, right
TRAIN_SENTENCES = (
    "go to column {x}, row {y}",
    "move to cell {x} {y}",
    "reach the square in column {x} and row {y}",
)
REPHRASE_SENTENCES = ("walk over to square ({x}, {y})", "head for row {y}, column {x}")
ROW_SENTENCES = ("go to any cell of row {y}", "reach row {y}, any column")


@cache
def _goals(level: str) -> tuple[Goal, ...]:
    if level == "hard":
        return tuple(
            Goal(f"row-{y}", level, tuple(s.format(y=y) for s in ROW_SENTENCES)) for y in range(SIZE)
        )
    parity = 1 if level == "easy" else 0
    sentences = REPHRASE_SENTENCES if level == "rephrase" else TRAIN_SENTENCES
    return tuple(
        Goal(f"cell-{x}-{y}", level, tuple(s.format(x=x, y=y) for s in sentences))
        for x in range(SIZE)
        for y in range(SIZE)
        if (x + y) % 2 == parity
    )


def _target(goal_id: str) -> tuple[int | None, int]:
    """``(column, row)`` of a goal; a row goal has no column."""
    parts = goal_id.split("-")
    return (None, int(parts[1])) if parts[0] == "row" else (int(parts[1]), int(parts[2]))


def _reached(goal_id: str, positions: np.ndarray) -> np.ndarray:
    column, row = _target(goal_id)
    positions = np.asarray(positions).reshape(-1, 2)
    hit = positions[:, 1] == row
    return hit if column is None else hit & (positions[:, 0] == column)


class GridEnv(gym.Env):
    """The grid with the gymnasium API; ``reset(options={"goal": id, "level": level})`` picks the goal."""

    def __init__(self) -> None:
        self.observation_space = gym.spaces.Box(0, SIZE - 1, (2,), np.float32)
        self.action_space = gym.spaces.Discrete(len(MOVES))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        level = options.get("level", "train")
        pool = {goal.id: goal for goal in _goals(level)}
        goal = (
            pool[options["goal"]]
            if "goal" in options
            else list(pool.values())[self.np_random.integers(len(pool))]
        )
        self.goal, self.steps = goal, 0
        self.instruction = goal.sentence(self.np_random)
        while True:  # never start on the goal
            self.position = self.np_random.integers(SIZE, size=2)
            if not _reached(goal.id, self.position)[0]:
                break
        return self.position.astype(np.float32), self._info(False)

    def step(self, action: Any):
        self.position = np.clip(self.position + MOVES[int(action)], 0, SIZE - 1)
        self.steps += 1
        success = bool(_reached(self.goal.id, self.position)[0])
        return (
            self.position.astype(np.float32),
            float(success),
            success,
            self.steps >= HORIZON,
            self._info(success),
        )

    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "goal_id": self.goal.id,
            "level": self.goal.level,
            "instruction": self.instruction,
            "success": success,
        }


class GridSuite(EnvSuite):
    """Everything kalm needs around the grid: goals, judges and rewards on observations, a behaviour
    policy."""

    name = "grid"
    gym_id = "kalm_grid/Grid-v0"
    spec = RolloutSpec(obs_dim=2, action_dim=len(MOVES), discrete=True, horizon=HORIZON)
    observation_low = np.zeros(2)  # plausibility checks of imagined rollouts: inside the grid,
    observation_high = np.full(2, SIZE - 1.0)
    max_step_change = np.ones(2)  # at most one cell per step

    def make(self, **kwargs: Any) -> GridEnv:
        return GridEnv(**kwargs)

    def goals(self, level: str) -> tuple[Goal, ...]:
        return _goals(level)

    def success(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        return _reached(goal_id, np.asarray(observations)[1:])

    def rewards(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        return self.success(goal_id, observations).astype(np.float32)

    def behaviour_policy(self, *, noise: float, rng: np.random.Generator):
        """Straight to the target (columns first), a random move with probability ``noise``."""

        def policy(observation: np.ndarray, goal_id: str) -> int:
            if rng.random() < noise:
                return int(rng.integers(len(MOVES)))
            column, row = _target(goal_id)
            x, y = (int(v) for v in observation)
            if column is not None and x != column:
                return 3 if column > x else 2
            return 0 if row > y else 1

        return policy


if GridSuite.gym_id not in gym.registry:
    gym.register(id=GridSuite.gym_id, entry_point="kalm_grid:GridEnv")
