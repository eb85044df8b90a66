"""Real rollout collection: a suite's behaviour policy (plus optional random exploration) on training
goals."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import datasets
import numpy as np
from tqdm.auto import tqdm

from kalm.data import rollouts_to_dataset, summarize
from kalm.envs.base import EnvSuite
from kalm.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectResult:
    """The collected dataset, its summary and the wall time it took."""

    dataset: datasets.Dataset
    summary: dict[str, Any]
    seconds: float


def collect_rollouts(
    suite: EnvSuite,
    *,
    episodes: int,
    seed: int = 0,
    noise: float = 0.1,
    random_fraction: float = 0.0,
    progress: bool = True,
) -> CollectResult:
    """Collect ``episodes`` real rollouts of training goals.

    Episode ``i`` is reproducible on its own: its goal, reset seed, policy noise and exploration are drawn
    from ``numpy.random.default_rng([seed, i])``. A fraction ``random_fraction`` of the episodes take
    uniformly random actions (exploration data, mostly unsuccessful); the rest follow the suite's
    behaviour policy with action noise ``noise``.
    """
    if episodes < 1:
        raise ConfigError(f"episodes={episodes!r} is invalid; expected a positive integer")
    if not 0.0 <= random_fraction <= 1.0:
        raise ConfigError(f"random_fraction={random_fraction!r} is invalid; expected a fraction in [0, 1]")
    env = suite.make()
    goals = suite.goals("train")
    start = time.perf_counter()
    rows = []
    for index in tqdm(range(episodes), desc=f"collect {suite.name}", unit="ep", disable=not progress or None):
        rng = np.random.default_rng([seed, index])
        goal = goals[int(rng.integers(len(goals)))]
        explore = bool(rng.random() < random_fraction)
        policy = suite.behaviour_policy(noise=1.0 if explore else noise, rng=rng)
        reset_seed = int(rng.integers(2**31))
        rows.append(
            run_episode(
                env, policy, goal_id=goal.id, reset_seed=reset_seed, episode_id=index, env_name=suite.name
            )
        )
    env.close()
    dataset = rollouts_to_dataset(rows, suite.spec)
    seconds = time.perf_counter() - start
    log.info("collected %d %s episodes in %.1f s", episodes, suite.name, seconds)
    return CollectResult(dataset, summarize(dataset), seconds)


def run_episode(
    env: Any,
    policy: Any,
    *,
    goal_id: str,
    reset_seed: int,
    episode_id: int,
    env_name: str,
    level: str = "train",
    source: str = "real",
) -> dict[str, Any]:
    """Roll ``policy`` (``(observation, goal_id) -> action``) out for one goal; returns a schema row."""
    observation, info = env.reset(seed=reset_seed, options={"goal": goal_id, "level": level})
    observations, actions, rewards = [observation], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        action = policy(observation, goal_id)
        observation, reward, terminated, truncated, info = env.step(action)
        observations.append(observation)
        actions.append(action)
        rewards.append(reward)
    return {
        "episode_id": episode_id,
        "env": env_name,
        "source": source,
        "level": level,
        "goal_id": goal_id,
        "instruction": info["instruction"],
        "seed": reset_seed,
        "length": len(actions),
        "observations": np.stack(observations),
        "actions": np.asarray(actions),
        "rewards": np.asarray(rewards, dtype=np.float32),
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "success": bool(info["success"]),
    }
