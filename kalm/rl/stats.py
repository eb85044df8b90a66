"""Intervals for success rates that match how the episodes were sampled.

- One fixed policy on independent cases (a floor policy, or one training seed): the Wilson score interval.
- Several training seeds, each evaluated on its own cases: a two-stage (cluster) bootstrap that resamples the
  seeds, then the cases within each seed, so the seed-to-seed spread widens the interval as it should.
- KALM against the baseline: a paired bootstrap of the difference. Seed ``i`` of both sides is evaluated on
  the same cases, so one resample draws seeds and cases once and applies them to both sides.

The bootstrap draws are seeded: the same outcomes always give the same interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z_95 = 1.959963984540054
RESAMPLES = 4000
_SEED = 20241210  # fixed: an interval is a function of the outcomes, not of the run


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (``(0, 1)`` for no trials)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _groups(outcomes: Sequence[float] | np.ndarray, groups: Sequence[int]) -> list[np.ndarray]:
    values = np.asarray(outcomes, dtype=np.float64)
    labels = np.asarray(groups)
    return [values[labels == label] for label in dict.fromkeys(labels.tolist())]


def _resampled_means(samples: list[np.ndarray], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Means of ``resamples`` two-stage resamples: draw as many groups as there are, with replacement, then
    the cases of each drawn group with replacement; every draw's mean is over all the cases it holds."""
    picked = rng.integers(len(samples), size=(resamples, len(samples)))
    totals, sizes = np.zeros(resamples), np.zeros(resamples)
    for slot in range(len(samples)):
        for group, values in enumerate(samples):
            rows = np.flatnonzero(picked[:, slot] == group)
            if rows.size and values.size:
                cases = rng.integers(values.size, size=(rows.size, values.size))
                totals[rows] += values[cases].sum(axis=1)
                sizes[rows] += values.size
    return totals / np.maximum(sizes, 1)


def bootstrap_interval(
    outcomes: Sequence[float], groups: Sequence[int], *, resamples: int = RESAMPLES, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of ``outcomes`` under a two-stage bootstrap over ``groups`` (e.g.
    training seeds) and the cases within each group. With one group it is a plain bootstrap over cases."""
    samples = _groups(outcomes, groups)
    if not samples or not sum(len(s) for s in samples):
        return 0.0, 1.0
    means = _resampled_means(samples, np.random.default_rng(_SEED), resamples)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def paired_difference(
    treated: Sequence[float],
    control: Sequence[float],
    groups: Sequence[int],
    *,
    resamples: int = RESAMPLES,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """``mean(treated) - mean(control)`` with its paired two-stage bootstrap interval.

    ``treated[i]`` and ``control[i]`` are outcomes of the same case (the same group and reset); every resample
    draws groups and cases once and uses them for both sides.
    """
    treated_values = np.asarray(treated, dtype=np.float64)
    control_values = np.asarray(control, dtype=np.float64)
    if treated_values.shape != control_values.shape:
        raise ValueError(
            f"paired outcomes differ in length: {treated_values.shape} vs {control_values.shape}"
        )
    difference = treated_values - control_values
    samples = _groups(difference, groups)
    means = _resampled_means(samples, np.random.default_rng(_SEED), resamples)
    tail = (1 - level) / 2
    return float(difference.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))
