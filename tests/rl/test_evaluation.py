"""Evaluation: fixed cases per level, deterministic outcomes in lockstep, Wilson intervals, reports."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from PIL import Image

from kalm.errors import ConfigError
from kalm.rl.evaluation import PolicyActor, evaluate_policy, evaluation_cases, run_cases, wilson_interval
from kalm.rl.goal_encoder import GoalEncoder
from kalm.rl.networks import Policy, PolicySpec
from kalm.rl.report import EvalReport

EASY_GOALS = ["step-red-left", "step-blue-front", "step-green-right"]


@pytest.fixture(scope="module")
def encoder(embedding_cache):
    return GoalEncoder(cache_dir=embedding_cache)


@pytest.fixture(scope="module")
def policy(encoder):
    torch.manual_seed(0)
    return Policy(PolicySpec(obs_dim=10, goal_dim=384, action_dim=40, discrete=True, head="argmax")).eval()


def test_cases_are_a_fixed_function_of_seed_and_level(clevr):
    cases = evaluation_cases(clevr, "easy", episodes=50, seed=3)
    assert cases == evaluation_cases(clevr, "easy", episodes=50, seed=3)
    assert cases != evaluation_cases(clevr, "easy", episodes=50, seed=4)
    assert len(cases) == 50 and {case.level for case in cases} == {"easy"}
    counts = Counter(case.goal_id for case in cases)  # 20 easy goals: each 2 or 3 times
    assert len(counts) == 20 and set(counts.values()) <= {2, 3}
    assert (
        evaluation_cases(clevr, "easy", episodes=20, seed=3) == cases[:20]
    )  # a prefix: more episodes extend it
    with pytest.raises(ConfigError, match="episodes=0 is invalid"):
        evaluation_cases(clevr, "easy", episodes=0)


def test_outcomes_do_not_depend_on_how_many_envs_run_in_lockstep(clevr, policy, encoder):
    cases = evaluation_cases(clevr, "easy", episodes=12, seed=1, goals=EASY_GOALS)
    encoder.encode([s for goal in EASY_GOALS for s in clevr.goal("easy", goal).sentences])
    one = run_cases(PolicyActor(policy, encoder), clevr, cases, num_envs=1)
    four = run_cases(PolicyActor(policy, encoder), clevr, cases, num_envs=4)
    assert one == four and len(one) == 12


def test_evaluate_policy_counts_episodes_per_level(clevr, policy, encoder):
    results = evaluate_policy(
        policy, clevr, encoder, levels=["easy"], episodes=9, seed=2, goals=EASY_GOALS, num_envs=3
    )
    result = results["easy"]
    assert result.episodes == 9 and result.successes == sum(result.outcomes)
    assert result.rate == pytest.approx(result.successes / 9)
    assert (result.ci_low, result.ci_high) == pytest.approx(wilson_interval(result.successes, 9))
    again = evaluate_policy(policy, clevr, encoder, levels=["easy"], episodes=9, seed=2, goals=EASY_GOALS)
    assert again["easy"].outcomes == result.outcomes


def test_wilson_interval_matches_known_values():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_report_writes_json_markdown_and_a_chart(tmp_path):
    from kalm.rl.evaluation import LevelResult

    def result(level, successes, n):
        low, high = wilson_interval(successes, n)
        return LevelResult(
            level, n, successes, successes / n, low, high, (True,) * successes + (False,) * (n - successes)
        )

    report = EvalReport("clevr", settings={"episodes": 10})
    report.results["baseline"] = {"train": result("train", 6, 10), "easy": result("easy", 1, 10)}
    report.results["KALM"] = {"train": result("train", 7, 10), "easy": result("easy", 4, 10)}
    paths = report.save(tmp_path)
    table = paths["markdown"].read_text().splitlines()
    assert table[0] == "| policy | train | easy |"
    assert table[2].startswith("| baseline | 60.0 % [31.3, 83.2] (n=10) | 10.0 %")
    assert json.loads(paths["json"].read_text())["results"]["KALM"]["easy"]["successes"] == 4
    with Image.open(paths["png"]) as image:
        assert image.size == (900, 480) and image.format == "PNG"
