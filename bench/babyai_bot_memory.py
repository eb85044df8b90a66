"""How much of the BabyAI bot's behaviour a memoryless policy can imitate (why BC sits at the floors, #18).

    python bench/babyai_bot_memory.py [--episodes 300] [--cases 100]

kalm's BabyAI behaviour policy is minigrid's BabyAI bot, which keeps a plan stack between steps. A policy
trained on ``(state, goal) -> action`` (every kalm learner) can only imitate the part of it that is a function
of the current state. Rows, all in this process:

- ``agreement``: share of logged actions (``collect_rollouts``, noise 0.1, 10 % random episodes) that a bot
  started afresh on that very observation would also take: an upper bound for any memoryless imitator on
  this data, up to the noise;
- ``success``: the bot with its memory (baseline) and the bot restarted at every step (memoryless), noise 0,
  on the evaluation cases of ``train`` and ``hard``; the ratio column is memoryless over baseline.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

from kalm.collect import collect_rollouts  # noqa: E402
from kalm.envs import get_suite  # noqa: E402
from kalm.envs.babyai.policy import BotPolicy  # noqa: E402
from kalm.rl.evaluation import FloorActor, evaluate_actor  # noqa: E402


def fresh_bot_agreement(episodes: int) -> float:
    """Share of the collected actions a bot started on the same observation would take."""
    rows = collect_rollouts(
        get_suite("babyai"), episodes=episodes, seed=0, noise=0.1, random_fraction=0.1, progress=False
    ).dataset
    agree = total = 0
    for row in rows:
        observations, actions = np.asarray(row["observations"]), np.asarray(row["actions"])
        for observation, action in zip(observations, actions, strict=False):
            agree += BotPolicy(noise=0.0)(observation, row["goal_id"]) == action
            total += 1
    return agree / total


def memoryless(rng: np.random.Generator):
    return lambda observation, goal_id: BotPolicy(noise=0.0, rng=rng)(observation, goal_id)


def stateful(rng: np.random.Generator):
    return BotPolicy(noise=0.0, rng=rng)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=300, help="collected episodes for the agreement row")
    parser.add_argument("--cases", type=int, default=100, help="evaluation cases per level")
    args = parser.parse_args()
    suite = get_suite("babyai")
    start = time.perf_counter()
    print(f"agreement of a fresh bot with the logged actions: {fresh_bot_agreement(args.episodes):.3f}")
    rates = {}
    for name, policy in (("bot with memory (baseline)", stateful), ("bot restarted every step", memoryless)):
        results = evaluate_actor(FloorActor(policy), suite, levels=("train", "hard"), episodes=args.cases)
        rates[name] = {level: float(np.mean(result.outcomes)) for level, result in results.items()}
    base = rates["bot with memory (baseline)"]
    print("| policy | train | hard | ratio (train) |\n|---|---|---|---|")
    for name, rate in rates.items():
        ratio = rate["train"] / base["train"] if base["train"] else float("nan")
        print(f"| {name} | {rate['train']:.1%} | {rate['hard']:.1%} | {ratio:.2f} |")
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
