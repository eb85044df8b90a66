"""Real rollout collection: a suite's behaviour policy (plus optional random exploration) on training
goals, optionally with hindsight copies of each rollout relabelled with other training goals it achieved."""

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
    hindsight: int = 0,
    progress: bool = True,
) -> CollectResult:
    """Collect ``episodes`` real rollouts of training goals.

    Episode ``i`` is reproducible on its own: its goal, reset seed, policy noise and exploration are drawn
    from ``numpy.random.default_rng([seed, i])``. A fraction ``random_fraction`` of the episodes take
    uniformly random actions (exploration data, mostly unsuccessful); the rest follow the suite's
    behaviour policy with action noise ``noise``.

    ``hindsight`` adds, per episode, up to that many relabelled copies (hindsight relabelling): the episode
    cut at the first success of another training goal it achieves (``EnvSuite.hindsight_goals``), with that
    goal's sentence and rewards. Copies follow their parent and keep its ``episode_id`` (so a trajectory and
    its copies land on the same side of a validation split, and a streaming shuffle sees them all along); the
    original episodes stay exactly as without ``hindsight``, and the copies are drawn from
    ``default_rng([seed, i, 1])``.
    """
    if episodes < 1:
        raise ConfigError(f"episodes={episodes!r} is invalid; expected a positive integer")
    if not 0.0 <= random_fraction <= 1.0:
        raise ConfigError(f"random_fraction={random_fraction!r} is invalid; expected a fraction in [0, 1]")
    if hindsight < 0:
        raise ConfigError(f"hindsight={hindsight!r} is invalid; expected a non-negative integer")
    env = suite.make()
    goals = suite.goals("train")
    start = time.perf_counter()
    rows, copies = [], 0
    for index in tqdm(range(episodes), desc=f"collect {suite.name}", unit="ep", disable=not progress or None):
        rng = np.random.default_rng([seed, index])
        goal = goals[int(rng.integers(len(goals)))]
        explore = bool(rng.random() < random_fraction)
        policy = suite.behaviour_policy(noise=1.0 if explore else noise, rng=rng)
        reset_seed = int(rng.integers(2**31))
        row = run_episode(
            env, policy, goal_id=goal.id, reset_seed=reset_seed, episode_id=index, env_name=suite.name
        )
        rows.append(row)
        if hindsight:
            relabelled = relabel(suite, row, limit=hindsight, rng=np.random.default_rng([seed, index, 1]))
            rows += relabelled
            copies += len(relabelled)
    env.close()
    dataset = rollouts_to_dataset(rows, suite.spec)
    seconds = time.perf_counter() - start
    log.info(
        "collected %d %s episodes (+%d hindsight copies) in %.1f s", episodes, suite.name, copies, seconds
    )
    summary = summarize(dataset)
    if hindsight:
        summary["hindsight_copies"] = copies
    return CollectResult(dataset, summary, seconds)


def relabel(
    suite: EnvSuite, row: dict[str, Any], *, limit: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Up to ``limit`` hindsight copies of one collected episode (``run_episode``'s row), each relabelled with
    another training goal the episode achieves, drawn at random without repeats."""
    observations = np.asarray(row["observations"])
    reached = suite.hindsight_goals(row["goal_id"], observations)
    if reached is None:
        raise ConfigError(
            f"{suite.name} does not support hindsight relabelling (its training goals cannot be judged on "
            "each other's rollouts); expected hindsight=0"
        )
    picks = rng.permutation(len(reached))[:limit]
    copies = []
    for goal_id, length in (reached[int(i)] for i in sorted(picks)):
        kept = observations[: length + 1]
        copies.append(
            {
                **row,
                "goal_id": goal_id,
                "instruction": suite.goal("train", goal_id).sentence(rng),
                "length": length,
                "observations": kept,
                "actions": np.asarray(row["actions"])[:length],
                "rewards": np.asarray(suite.rewards(goal_id, kept), dtype=np.float32),
                "terminated": True,
                "truncated": False,
                "success": True,
            }
        )
    return copies


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
