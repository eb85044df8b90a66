"""Meta-World (v3 tasks, MuJoCo) as a kalm environment suite: KALM's second environment (reference §5.2).

22 tasks over four goal levels, a 91-d entity-slot observation, state-only judges and rewards, and
Meta-World's scripted experts as the behaviour policy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kalm.data.schema import RolloutSpec
from kalm.envs.base import EnvSuite, Policy
from kalm.envs.goals import Goal
from kalm.envs.metaworld import judges, rewards, tasks
from kalm.envs.metaworld.entities import OBS_DIM, plausibility_bounds
from kalm.envs.metaworld.env import HORIZON, MetaWorldEnv
from kalm.envs.metaworld.policy import ExpertPolicy


class MetaWorldSuite(EnvSuite):
    """Meta-World: task goals per level, state-only judges and rewards, scripted experts with action noise.

    ``behaviour_policy(noise=...)`` reads ``noise`` as the standard deviation of Gaussian action noise.
    """

    name = "metaworld"
    gym_id = "kalm/MetaWorld-v0"
    spec = RolloutSpec(obs_dim=OBS_DIM, action_dim=4, discrete=False, horizon=HORIZON)
    observation_low, observation_high, max_step_change = plausibility_bounds()

    def make(self, **kwargs: Any) -> MetaWorldEnv:
        return MetaWorldEnv(**kwargs)

    def goals(self, level: str) -> tuple[Goal, ...]:
        return tasks.goals(level)

    def success(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        tasks.get_task(goal_id)
        return judges.success(goal_id, np.asarray(observations)[1:])

    def rewards(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        tasks.get_task(goal_id)
        return rewards.rewards(goal_id, observations)

    def behaviour_policy(self, *, noise: float, rng: np.random.Generator) -> Policy:
        return ExpertPolicy(noise=noise, rng=rng)


__all__ = ["MetaWorldEnv", "MetaWorldSuite"]
