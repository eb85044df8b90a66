"""Fixtures of the Meta-World tests: one environment shared by the session (its scenes are built once)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from kalm.envs.metaworld.tasks import get_task


@dataclass
class Episode:
    """One rollout: ``T + 1`` observations, ``T`` actions, rewards and Meta-World success flags."""

    task: str
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    success: np.ndarray
    terminated: bool
    truncated: bool


@pytest.fixture(scope="session")
def metaworld():
    """The Meta-World environment suite."""
    from kalm.envs import get_suite

    return get_suite("metaworld")


@pytest.fixture(scope="session")
def mw_env(metaworld):
    """One ``MetaWorldEnv`` for the session; every test resets it first."""
    env = metaworld.make()
    yield env
    env.close()


@pytest.fixture(scope="session")
def run_episode(metaworld, mw_env) -> Callable[..., Episode]:
    """``run_episode(task, seed, noise=0.0, horizon=None, policy=None)``: roll out the (noisy) expert."""

    def run(task: str, seed: int, noise: float = 0.0, horizon: int | None = None, policy=None) -> Episode:
        policy = policy or metaworld.behaviour_policy(noise=noise, rng=np.random.default_rng(seed))
        mw_env.horizon = horizon or 100
        observation, _ = mw_env.reset(seed=seed, options={"goal": task, "level": get_task(task).level})
        observations, actions, rewards, success = [observation], [], [], []
        terminated = truncated = False
        while not (terminated or truncated):
            action = policy(observation, task)
            observation, reward, terminated, truncated, info = mw_env.step(action)
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
            success.append(info["success"])
        mw_env.horizon = 100
        return Episode(
            task,
            np.stack(observations),
            np.stack(actions),
            np.asarray(rewards, np.float32),
            np.asarray(success),
            terminated,
            truncated,
        )

    return run
