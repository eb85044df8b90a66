"""Meta-World (v3 tasks, MuJoCo) as a kalm environment suite: KALM's second environment (reference §5.2).

22 tasks over four goal levels, a 91-d entity-slot observation, state-only judges and rewards, and
Meta-World's scripted experts as the behaviour policy.
"""

from __future__ import annotations

import atexit
from collections.abc import Mapping
from typing import Any

import numpy as np

from kalm.data.schema import RolloutSpec
from kalm.envs.base import EnvSuite, FloorPolicy, Policy
from kalm.envs.goals import Goal
from kalm.envs.metaworld import entities, judges, rewards, tasks
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

    def project_states(self, states: np.ndarray, initial: np.ndarray) -> np.ndarray:
        """Slots empty at the start stay empty (zeros), quaternions unit, the target location where the
        episode put it, and the opening in [0, 1] (Meta-World clips it there): ``entities.project``."""
        return entities.project(states, initial)

    def behaviour_policy(self, *, noise: float, rng: np.random.Generator) -> Policy:
        return ExpertPolicy(noise=noise, rng=rng)

    def evaluation_options(self, level: str) -> dict[str, Any]:
        """One distractor entity in an irrelevant slot, as the reference's test setting (§5.2)."""
        return {"distractors": 1}

    def floor_policies(self) -> Mapping[str, FloorPolicy]:
        """Uniformly random actions, and the zero action (the arm stays where it is)."""
        return {**super().floor_policies(), "zero action": _zero_action}

    def render_observation(
        self, observation: np.ndarray, *, size: int = 160, goal_id: str | None = None
    ) -> np.ndarray:
        """Render the scene a 91-d state shows (imagined states included), placed by ``placement.place``.

        The scene is ``goal_id``'s task's, or else the first task whose entities fill exactly the state's
        slots (tasks with the same entities share Meta-World's scene file). The arm's joints are not in the
        state: it reaches the hand's position the same way for every state (``placement``).
        """
        from kalm.envs.metaworld.placement import place

        renderers = self.__dict__.setdefault("_renderers", {})
        fresh = size not in renderers
        if fresh:
            renderers[size] = MetaWorldEnv(render_mode="rgb_array", render_size=size)
        env = renderers[size]
        scene = env.scene(
            tasks.get_task(goal_id) if goal_id else tasks.task_showing(entities.filled(observation))
        )
        place(scene, observation)
        image = scene.render(size, env.camera)
        if (
            fresh
        ):  # registered after the first GL context, so it runs before MuJoCo terminates the EGL display
            atexit.register(env.close)
        return image


def _zero_action(rng: np.random.Generator) -> Policy:
    return lambda observation, goal_id: np.zeros(4, dtype=np.float32)


__all__ = ["MetaWorldEnv", "MetaWorldSuite"]
