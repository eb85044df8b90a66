"""BabyAI collection speed: kalm's bot episodes per minute against minigrid's own BabyAI levels and bot.

    python bench/babyai_collect.py [--episodes 3000] [--raw-episodes 1000]

Rows, all in this process:

- ``kalm collect``: ``kalm.collect.collect_rollouts`` on the babyai suite (the BabyAI bot on a mirror of the
  scene rebuilt from the 35-d observation, noise 0.1, 10 % random episodes; state-only judges and rewards at
  every step, rows built into a ``datasets.Dataset``): the number issue #18 asks >= 1,000 of per minute;
- ``kalm env + bot``: the same episodes without building the dataset;
- ``minigrid + BabyAIBot`` (baseline): minigrid's single-room BabyAI levels of the same missions
  (GoToLocalS7N4, PickupLoc, PutNextLocalS6N4; BabyAI's 7x7 room with 4 objects is GoToLocalS7N4) driven by
  minigrid's bot with its partial view, the way BabyAI generates its demonstrations (an episode whose noisy
  toggle opened a box ends there: minigrid's bot gives up, and its boxes vanish when opened).

The ratio column is each row's episodes per minute over the baseline's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import time

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from kalm.collect import collect_rollouts, run_episode  # noqa: E402
from kalm.envs import get_suite  # noqa: E402

RAW_LEVELS = ("BabyAI-GoToLocalS7N4-v0", "BabyAI-PickupLoc-v0", "BabyAI-PutNextLocalS6N4-v0")


def raw_minigrid(episodes: int) -> tuple[float, float]:
    """Episodes per minute and mean length of minigrid's levels solved by minigrid's bot."""
    import gymnasium as gym
    from minigrid.utils.baby_ai_bot import BabyAIBot

    envs = [gym.make(level) for level in RAW_LEVELS]
    rng = np.random.default_rng(0)
    steps = 0
    start = time.perf_counter()
    for index in range(episodes):
        env = envs[index % len(envs)]
        with contextlib.redirect_stdout(io.StringIO()):  # minigrid prints every rejected sample
            env.reset(seed=index)
        bot = BabyAIBot(env)
        action, done = None, False
        while not done:
            try:
                action = bot.replan(action)
            except Exception:  # noqa: BLE001 -- stock minigrid: a noisy toggle opened a box, the bot gives up
                break
            if rng.random() < 0.1:
                action = int(rng.integers(7))
            _, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
            steps += 1
    seconds = time.perf_counter() - start
    return episodes / seconds * 60, steps / episodes


def kalm_env(episodes: int) -> tuple[float, float]:
    """Episodes per minute and mean length of the babyai suite's bot episodes (no dataset)."""
    suite = get_suite("babyai")
    env, goals = suite.make(), suite.goals("train")
    steps = 0
    start = time.perf_counter()
    for index in range(episodes):
        rng = np.random.default_rng([0, index])
        goal = goals[int(rng.integers(len(goals)))]
        policy = suite.behaviour_policy(noise=0.1, rng=rng)
        steps += run_episode(
            env,
            policy,
            goal_id=goal.id,
            reset_seed=int(rng.integers(2**31)),
            episode_id=index,
            env_name=suite.name,
        )["length"]
    seconds = time.perf_counter() - start
    return episodes / seconds * 60, steps / episodes


def kalm_collect(episodes: int) -> tuple[float, float, float]:
    """Episodes per minute, mean length and success rate of ``collect_rollouts``."""
    result = collect_rollouts(
        get_suite("babyai"), episodes=episodes, seed=0, noise=0.1, random_fraction=0.1, progress=False
    )
    return episodes / result.seconds * 60, result.summary["mean_length"], result.summary["success_rate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3000)
    parser.add_argument("--raw-episodes", type=int, default=1000)
    args = parser.parse_args()
    baseline, raw_length = raw_minigrid(args.raw_episodes)
    env_rate, env_length = kalm_env(args.episodes)
    rate, length, success = kalm_collect(args.episodes)
    print(f"{'':26} {'episodes/min':>13} {'mean length':>12} {'ratio':>7}")
    print(f"{'minigrid + BabyAIBot':26} {baseline:13,.0f} {raw_length:12.1f} {1.0:7.2f}")
    print(f"{'kalm env + bot':26} {env_rate:13,.0f} {env_length:12.1f} {env_rate / baseline:7.2f}")
    print(f"{'kalm collect':26} {rate:13,.0f} {length:12.1f} {rate / baseline:7.2f}")
    print(
        f"\nkalm collect: {args.episodes} episodes, success rate {success:.1%} (goal: >= 1,000 episodes/min)"
    )


if __name__ == "__main__":
    main()
