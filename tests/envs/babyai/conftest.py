"""Fixtures of the BabyAI tests: the suite, and seeded bot episodes of every level."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kalm.envs import get_suite
from kalm.envs.cases import level_cases


@pytest.fixture(scope="session")
def babyai():
    return get_suite("babyai")


def play(suite: Any, level: str, goal_id: str, seed: int, policy: Any) -> dict[str, Any]:
    """One episode of ``policy`` in the real environment: its observations, actions, rewards and per-step
    infos."""
    env = suite.make()
    observation, info = env.reset(seed=seed, options={"goal": goal_id, "level": level})
    observations, actions, rewards, infos = [observation], [], [], []
    done = False
    while not done:
        action = policy(observation, goal_id)
        observation, reward, terminated, truncated, info = env.step(action)
        observations.append(observation)
        actions.append(action)
        rewards.append(reward)
        infos.append(info)
        done = terminated or truncated
    return {
        "observations": np.stack(observations),
        "actions": actions,
        "rewards": np.asarray(rewards),
        "infos": infos,
        "terminated": terminated,
        "truncated": truncated,
    }


@pytest.fixture(scope="session")
def bot_episodes(babyai) -> dict[tuple[str, float], list[dict[str, Any]]]:
    """60 episodes per level of the bot with noise 0.2 and of uniformly random actions (noise 1), on the
    levels' evaluation cases."""
    episodes = {}
    for level in ("train", "rephrase", "easy", "hard"):
        for noise in (0.2, 1.0):
            runs = []
            for case in level_cases(babyai, level, episodes=60, seed=1):
                policy = babyai.behaviour_policy(noise=noise, rng=np.random.default_rng(case.seed))
                runs.append(
                    {
                        "goal_id": case.goal_id,
                        "level": level,
                        **play(babyai, level, case.goal_id, case.seed, policy),
                    }
                )
            episodes[level, noise] = runs
    return episodes
