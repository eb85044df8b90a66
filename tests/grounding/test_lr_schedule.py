"""The grounding LR schedule (transformers' cosine-with-floor) against the hand-written formula it
replaced."""

from __future__ import annotations

import math

import pytest
import torch

from kalm.grounding.module import LR_FLOOR, lr_schedule


def previous(step: int, warmup: int, total: int) -> float:
    """The schedule's factor as kalm wrote it before (linear warm-up from 1/warmup, cosine to 10 %)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def factors(warmup: int, total: int) -> list[float]:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    scheduler = lr_schedule(optimizer, warmup=warmup, total=total)
    values = []
    for _ in range(total):
        values.append(optimizer.param_groups[0]["lr"] / 2.0)
        optimizer.step()
        scheduler.step()
    return values


@pytest.mark.parametrize(("warmup", "total"), [(20, 200), (5, 6), (0, 50), (1, 1)])
def test_after_warm_up_the_schedule_is_the_previous_one(warmup, total):
    values = factors(warmup, total)
    for step in range(warmup, total):
        assert values[step] == pytest.approx(previous(step, warmup, total), abs=1e-12)
    assert min(values[warmup:] or [1.0]) >= LR_FLOOR - 1e-12  # the floor


def test_warm_up_is_linear_and_starts_one_step_earlier_than_before():
    values = factors(20, 200)
    assert values[0] == 0.0 and values[10] == pytest.approx(0.5) and values[20] == pytest.approx(1.0)
    assert [values[step + 1] for step in range(19)] == pytest.approx(
        [previous(s, 20, 200) for s in range(19)]
    )
    assert values[110] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))  # half way: 0.55
