"""Intervals that match the sampling: Wilson for one policy, a two-stage bootstrap over seeds, paired
differences."""

import numpy as np
import pytest

from kalm.rl.evaluation import FloorActor, evaluate_actor, evaluate_floors, pool
from kalm.rl.report import EvalReport
from kalm.rl.stats import bootstrap_interval, paired_difference, wilson_interval


def test_one_group_bootstrap_is_close_to_wilson_and_seed_spread_widens_it():
    rng = np.random.default_rng(0)
    outcomes = rng.random(600) < 0.4
    low, high = bootstrap_interval(outcomes, [0] * 600)
    assert (low, high) == pytest.approx(wilson_interval(int(outcomes.sum()), 600), abs=0.01)
    spread = np.concatenate([rng.random(200) < p for p in (0.1, 0.4, 0.7)])
    wide = bootstrap_interval(spread, np.repeat([0, 1, 2], 200))
    assert wide[1] - wide[0] > 2 * (high - low)  # three seeds far apart: the seed spread dominates
    assert bootstrap_interval(spread, np.repeat([0, 1, 2], 200)) == wide  # seeded: a function of the outcomes


def test_paired_difference_of_identical_policies_is_zero_and_pairing_narrows_it():
    rng = np.random.default_rng(1)
    groups = np.repeat([0, 1, 2], 200)
    a = rng.random(600) < 0.5
    assert paired_difference(a, a, groups) == (0.0, 0.0, 0.0)
    b = a.copy()
    flip = rng.choice(600, size=30, replace=False)
    b[flip] = ~b[flip]  # the same policy but for 5 % of the cases
    difference, low, high = paired_difference(b, a, groups)
    assert low <= difference <= high and high - low < 0.06
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference(a, a[:10], groups)


def test_identical_policies_on_shared_cases_differ_by_an_interval_containing_zero(clevr):
    floor = clevr.floor_policies()["uniform random"]
    runs = [
        evaluate_actor(FloorActor(floor), clevr, levels=["easy"], episodes=60, seeds=[seed])
        for seed in (0, 1)
    ]
    report = EvalReport("clevr", {"a": pool(runs), "b": pool(runs)}, comparisons=[("b", "a")])
    assert report.difference("b", "a", "easy") == (0.0, 0.0, 0.0)
    other = evaluate_actor(
        FloorActor(clevr.floor_policies()["named ball, random direction"]),
        clevr,
        levels=["easy"],
        episodes=60,
        seeds=[0, 1],
    )
    report.results["c"] = other
    difference, low, high = report.difference("c", "a", "easy")
    assert low < difference < high and difference > 0  # knows the ball: better than uniform on easy goals


def test_floors_play_exactly_the_policies_cases(clevr):
    floors = evaluate_floors(clevr, levels=["hard"], episodes=10, seeds=[3, 4])
    policy_like = pool(
        [
            evaluate_actor(
                FloorActor(clevr.floor_policies()["uniform random"]),
                clevr,
                levels=["hard"],
                episodes=10,
                seeds=[seed],
            )
            for seed in (3, 4)
        ]
    )
    floor = floors["uniform random"]["hard"]
    assert floor.goal_ids == policy_like["hard"].goal_ids and floor.groups == policy_like["hard"].groups
    assert floor.outcomes == policy_like["hard"].outcomes  # a floor's randomness is the case's own
    assert floor.interval == "wilson" and policy_like["hard"].interval == "bootstrap"
    report = EvalReport(
        "clevr",
        {"x": policy_like, **{f"floor: {k}": v for k, v in floors.items()}},
        comparisons=[("x", "floor: uniform random")],
    )
    assert report.difference("x", "floor: uniform random", "hard") == (0.0, 0.0, 0.0)
    markdown = report.to_markdown()
    assert "| floor: named ball, random direction |" in markdown and "hard goals by kind:" in markdown
    assert EvalReport.from_dict(report.to_dict()).to_markdown() == markdown
