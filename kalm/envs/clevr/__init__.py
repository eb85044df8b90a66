"""CLEVR-Robot (5 balls, 40 discrete pushes) as a kalm environment suite."""

from __future__ import annotations

from typing import Any

import numpy as np

from kalm.data.schema import RolloutSpec
from kalm.envs.base import EnvSuite, Policy
from kalm.envs.clevr import goals as _goals
from kalm.envs.clevr import judges
from kalm.envs.clevr.env import HORIZON, ClevrRobotEnv
from kalm.envs.clevr.physics import BALL_RADIUS, NUM_ACTIONS, NUM_BALLS, TABLE_HALF_SIZE
from kalm.envs.clevr.policy import ScriptedPolicy
from kalm.envs.clevr.specs import parse_spec
from kalm.envs.goals import Goal


class ClevrSuite(EnvSuite):
    """CLEVR-Robot: goals per level, state-only judges and rewards, a scripted behaviour policy."""

    name = "clevr"
    gym_id = "kalm/CLEVR-Robot-v0"
    spec = RolloutSpec(obs_dim=2 * NUM_BALLS, action_dim=NUM_ACTIONS, discrete=True, horizon=HORIZON)
    # Ball centres stay inside the walls (contacts may press 0.01 into them); one push moves a ball at most
    # ~0.3 along an axis, knocked-on balls included (the largest step in 10,000 real episodes was 0.296).
    observation_low = np.full(2 * NUM_BALLS, -(TABLE_HALF_SIZE - BALL_RADIUS) - 0.02)
    observation_high = -observation_low
    max_step_change = np.full(2 * NUM_BALLS, 0.35)

    def make(self, **kwargs: Any) -> ClevrRobotEnv:
        return ClevrRobotEnv(**kwargs)

    def goals(self, level: str) -> tuple[Goal, ...]:
        return _goals.goals(level)

    def success(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations)
        return judges.success(parse_spec(goal_id), observations[1:], observations[0])

    def rewards(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        return judges.rewards(parse_spec(goal_id), observations)

    def start_options(self, observation: np.ndarray) -> dict[str, Any]:
        return {"positions": np.asarray(observation, dtype=np.float64).reshape(NUM_BALLS, 2)}

    def render_observation(self, observation: np.ndarray, *, size: int = 160, goal_id: str | None = None) -> np.ndarray:
        """Render the balls at the positions in ``observation`` (imagined states included; every goal has the
        same scene)."""
        env = self._renderers.get(size)
        if env is None:
            env = self._renderers[size] = ClevrRobotEnv(render_mode="rgb_array", render_size=size)
        env.physics.set_positions(np.asarray(observation, dtype=np.float64).reshape(NUM_BALLS, 2))
        return env.render()

    @property
    def _renderers(self) -> dict[int, ClevrRobotEnv]:
        if not hasattr(self, "_render_envs"):
            self._render_envs: dict[int, ClevrRobotEnv] = {}
        return self._render_envs

    def behaviour_policy(self, *, noise: float, rng: np.random.Generator) -> Policy:
        scripted = ScriptedPolicy(noise=noise, rng=rng)
        return lambda observation, goal_id: scripted(observation, parse_spec(goal_id))


__all__ = ["ClevrRobotEnv", "ClevrSuite"]
