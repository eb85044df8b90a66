"""Labelling imaginary rollouts with the environment's state-only judge and reward, and filtering them.

A decoded rollout is cut where its level's protocol ends it (the first state that achieves or fails its
goal, ``terminated``; or the level's horizon), labelled with
the suite's reward function, and checked for plausibility (``EnvSuite.implausibility``: NaN/inf,
states outside the workspace, steps beyond the environment's dynamics).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kalm.envs.base import EnvSuite

PLAUSIBLE = "plausible"


@dataclass
class FilterStats:
    """Counts of rollouts per level and verdict (``plausible`` or an implausibility reason)."""

    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, level: str, verdict: str) -> None:
        self.counts.setdefault(level, Counter())[verdict] += 1

    def merge(self, other: FilterStats) -> None:
        for level, counter in other.counts.items():
            self.counts.setdefault(level, Counter()).update(counter)

    def to_dict(self) -> dict[str, dict[str, int]]:
        return {level: dict(sorted(counter.items())) for level, counter in sorted(self.counts.items())}

    def table(self) -> str:
        """A markdown table: rollouts per level, kept, and each reason with its rate."""
        reasons = sorted({reason for counter in self.counts.values() for reason in counter} - {PLAUSIBLE})
        lines = [
            "| " + " | ".join(["level", "rollouts", PLAUSIBLE, *reasons]) + " |",
            "|---|---|---|" + "---|" * len(reasons),
        ]
        for level, counter in sorted(self.counts.items()):
            total = sum(counter.values())
            cells = [f"{counter[reason]} ({counter[reason] / total:.1%})" for reason in (PLAUSIBLE, *reasons)]
            lines.append(f"| {level} | {total} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def label_rollout(
    suite: EnvSuite, goal_id: str, level: str, observations: np.ndarray, actions: np.ndarray
) -> dict[str, Any]:
    """Cut a decoded rollout where its level's protocol ends it (``EnvSuite.outcome``: first success or
    failure, or the level's horizon) and label it; returns the schema's numeric columns."""
    observations = np.asarray(observations, dtype=np.float32)
    actions = np.asarray(actions)
    outcome = suite.outcome(goal_id, level, observations[: len(actions) + 1])
    length = outcome.length
    observations, actions = observations[: length + 1], actions[:length]
    return {
        "length": length,
        "observations": observations,
        "actions": actions,
        "rewards": np.asarray(suite.rewards(goal_id, observations), dtype=np.float32),
        "terminated": outcome.terminated,
        "truncated": not outcome.terminated and length == suite.protocol(level).horizon,
        "success": outcome.success,
    }


def verdict(suite: EnvSuite, observations: np.ndarray) -> str:
    """``plausible`` or the reason the rollout cannot be real."""
    return suite.implausibility(observations) or PLAUSIBLE
