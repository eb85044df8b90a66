"""Labelling and plausibility checks on hand-made CLEVR rollouts."""

import numpy as np
import pytest

from kalm.imagine.label import FilterStats, label_rollout, verdict

START = np.array([0.3, 0.0, 0.0, 0.0, -0.4, -0.4, 0.4, -0.4, 0.4, 0.4], dtype=np.float32)


def moved(observation, ball, dx, dy):
    result = observation.copy()
    result[2 * ball] += dx
    result[2 * ball + 1] += dy
    return result


def test_rollout_is_cut_at_the_first_success_and_rewarded(clevr):
    # red (ball 0) moves left past blue: success at step 3 of 5
    states = [START]
    for _ in range(5):
        states.append(moved(states[-1], 0, -0.13, 0.0))
    labelled = label_rollout(clevr, "red-left-of-blue", "train", np.stack(states), np.array([2, 2, 2, 2, 2]))
    assert labelled["length"] == 3 and labelled["success"] and labelled["terminated"]
    assert not labelled["truncated"]
    assert labelled["observations"].shape == (4, 10) and labelled["actions"].tolist() == [2, 2, 2]
    assert labelled["rewards"][-1] == pytest.approx(
        100 - 10 * 0.05, abs=1e-4
    )  # success, slightly further away
    assert labelled["rewards"].dtype == np.float32
    np.testing.assert_allclose(
        labelled["rewards"], clevr.rewards("red-left-of-blue", labelled["observations"])
    )


def test_unsuccessful_rollouts_are_truncated_only_at_the_horizon(clevr):
    short = np.stack([START, moved(START, 0, 0.0, 0.1)])
    assert not label_rollout(clevr, "red-left-of-blue", "train", short, np.array([1]))["truncated"]
    full = np.stack([START] * 51)
    labelled = label_rollout(clevr, "red-left-of-blue", "train", full, np.ones(50, dtype=int))
    assert labelled["truncated"] and not labelled["success"] and labelled["length"] == 50


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda s: moved(s, 0, -0.13, 0.0), "plausible"),
        (lambda s: moved(s, 0, np.nan, 0.0), "non_finite"),
        (lambda s: moved(s, 3, 0.0, -0.2), "out_of_workspace"),  # purple through the front wall
        (lambda s: moved(s, 1, 0.4, 0.0), "exceeds_dynamics"),  # blue jumps 0.4 in one step
    ],
)
def test_plausibility_verdicts(clevr, change, expected):
    assert verdict(clevr, np.stack([START, change(START)])) == expected


def test_filter_stats_table():
    stats = FilterStats()
    for judged in ["plausible", "plausible", "out_of_workspace"]:
        stats.add("easy", judged)
    other = FilterStats()
    other.add("easy", "exceeds_dynamics")
    stats.merge(other)
    assert stats.to_dict() == {"easy": {"exceeds_dynamics": 1, "out_of_workspace": 1, "plausible": 2}}
    assert "| easy | 4 | 2 (50.0%) | 1 (25.0%) | 1 (25.0%) |" in stats.table()
    clean = FilterStats()
    clean.add("hard", "plausible")
    assert clean.table().splitlines()[:2] == ["| level | rollouts | plausible |", "|---|---|---|"]
