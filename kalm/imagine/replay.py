"""Imagined rollouts replayed in the real environment: does physics agree with what the model imagined?

The environment starts at the rollout's initial state (``EnvSuite.start_options``, else the reset seed that
produced it) and takes the imagined actions. Two numbers per level summarise the kept rollouts:

- ``replay_success``: the share whose actions reach the goal in the simulator, under the level's protocol
  (the real episode ends at its first success or failure, as in evaluation); ``imagined_success`` the share
  the judge labelled successful from the imagined states, and ``replay_success_of_imagined`` the share of
  those whose replay succeeds too (how far a success label can be trusted);
- ``parted_at``: the mean step at which imagined and real states first differ by more than the suite's
  ``replay_tolerance`` in some dimension (over the rollouts that part), with the share that never part.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from kalm.envs.base import EnvSuite


def replay(
    suite: EnvSuite,
    goal_id: str,
    level: str,
    observations: np.ndarray,
    actions: Iterable[Any],
    *,
    seed: int = 0,
) -> tuple[np.ndarray, bool]:
    """The real environment's observations when it starts at ``observations[0]`` and takes ``actions`` (until
    its episode ends), and whether it reached the goal."""
    env = suite.make()
    options = {"goal": goal_id, "level": level, **suite.start_options(observations[0])}
    state, info = env.reset(seed=seed, options=options)
    states, success = [state], False
    for action in actions:
        state, _, terminated, truncated, info = env.step(action)
        states.append(state)
        if terminated or truncated:
            success = bool(info["success"])
            break
    env.close()
    return np.stack(states), success


def replay_agreement(suite: EnvSuite, rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per level: rollouts replayed, ``replay_success``, ``imagined_success``, ``replay_success_of_imagined``,
    ``parted_at`` and ``never_parted`` (see the module)."""
    tallies: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        observations = np.asarray(row["observations"])
        actions = np.asarray(row["actions"])
        action_list = [int(a) for a in actions] if suite.spec.discrete else list(actions)
        real, success = replay(
            suite, str(row["goal_id"]), str(row["level"]), observations, action_list, seed=int(row["seed"])
        )
        steps = min(len(real), len(observations))
        apart = np.flatnonzero(
            np.abs(real[:steps] - observations[:steps]).max(axis=-1) > suite.replay_tolerance
        )
        tally = tallies.setdefault(
            str(row["level"]), {"success": [], "parted": [], "never": [], "imagined": [], "confirmed": []}
        )
        tally["success"].append(float(success))
        tally["imagined"].append(float(bool(row["success"])))
        if row["success"]:
            tally["confirmed"].append(float(success))
        tally["never"].append(float(not apart.size))
        if apart.size:
            tally["parted"].append(float(apart[0]))
    return {
        level: {
            "rollouts": float(len(t["success"])),
            "replay_success": float(np.mean(t["success"])),
            "imagined_success": float(np.mean(t["imagined"])),
            "replay_success_of_imagined": _mean(t["confirmed"]),
            "parted_at": _mean(t["parted"]),
            "never_parted": float(np.mean(t["never"])),
        }
        for level, t in sorted(tallies.items())
    }


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
