"""Grounding diagnostics that cannot be fooled: strict explanations with per-slot and constant baselines,
free-running action agreement with its chance level, match-rate cases over every kind of goal."""

import numpy as np
import pytest

from kalm.grounding.metrics import action_agreement, explanation_cases, explanation_metrics, match_rate


class Describer:
    """Says the given sentences, one per rollout, in order (a stand-in for the model's rollout -> text
    head)."""

    def __init__(self, texts):
        self.texts = list(texts)

    def explain(self, observations, actions):
        said, self.texts = self.texts[: len(observations)], self.texts[len(observations) :]
        return said


def test_explanations_count_only_exact_goals_and_come_with_their_constant_baselines(clevr, episodes):
    rows = [row for row in episodes if row["success"]][:20]
    goals = [str(row["goal_id"]) for row in rows]
    truth = [clevr.goal("train", goal).sentences[3] for goal in goals]
    perfect = explanation_metrics(Describer(truth), clevr, rows, batch_size=7)
    assert perfect["explanation_accuracy"] == 1.0
    assert all(
        perfect[f"explanation_slot/{slot}"] == 1.0 for slot in ("source_ball", "reference_ball", "direction")
    )
    self_referential = [
        f"Can you push the {g.split('-')[0]} ball to the left of the {g.split('-')[0]} ball" for g in goals
    ]
    fooled = explanation_metrics(Describer(self_referential), clevr, rows)
    assert fooled["explanation_accuracy"] == 0.0  # a fuzzy matcher would have counted some of these
    assert fooled["explanation_slot/source_ball"] == 1.0 and fooled["explanation_slot/reference_ball"] == 0.0
    most_common = max(set(goals), key=goals.count)
    assert perfect["explanation_accuracy/constant"] == pytest.approx(goals.count(most_common) / len(goals))
    constant = explanation_metrics(
        Describer([clevr.goal("train", most_common).sentences[0]] * 20), clevr, rows
    )
    assert constant["explanation_accuracy"] == constant["explanation_accuracy/constant"]  # chance, visibly
    assert explanation_metrics(Describer([]), clevr, []) == {}


def test_action_agreement_is_free_running_and_reports_chance(clevr, make_model):
    model = make_model().eval()
    metrics = action_agreement(model, clevr, "easy", count=200, seed=0)
    keys = {"right_ball", "direction_within_45°", "exact"}
    assert {key.split("/")[2] for key in metrics} == keys
    assert metrics["action_agreement/easy/direction_within_45°/chance"] == pytest.approx(0.375, abs=0.08)
    assert metrics["action_agreement/easy/right_ball/chance"] == pytest.approx(0.2, abs=0.07)
    for key in keys:
        assert 0.0 <= metrics[f"action_agreement/easy/{key}"] <= 1.0
    assert action_agreement(model, clevr, "hard", count=4) == {}  # the behaviour policy has no compound goals
    again = action_agreement(model, clevr, "easy", count=200, seed=0)
    assert again == metrics


def test_match_rate_runs_each_level_under_its_protocol(clevr, make_model):
    model = make_model(
        residual_states=True
    ).eval()  # an untrained residual model copies the state: never a match
    assert match_rate(model, clevr, "easy", count=8) == 0.0
    assert match_rate(model, clevr, "hard", count=20) == 0.0
    assert np.isfinite(match_rate(model, clevr, "train", count=4, horizon=3))


def test_explanation_reliance_is_what_the_rollout_changes_and_zero_without_one(make_model, clevr, episodes):
    from kalm.grounding.metrics import explanation_reliance

    model = make_model().eval()
    rows = [row for row in episodes if row["success"]][:12]
    assert len({str(row["goal_id"]) for row in rows}) > 1
    seen = explanation_reliance(model, clevr, rows, batch_size=5)
    assert seen["explanation_loss"] > 0 and seen["explanation_loss/from_rollout"] != 0.0
    assert seen["explanation_loss/from_rollout"] == pytest.approx(
        seen["explanation_loss/other_rollout"] - seen["explanation_loss"], rel=1e-4
    )
    # every episode given the same rollout: the other episode's rollout is the own one, nothing to read
    same = [{**row, "observations": rows[0]["observations"], "actions": rows[0]["actions"]} for row in rows]
    blind = explanation_reliance(model, clevr, same)
    assert blind["explanation_loss/from_rollout"] == pytest.approx(0.0, abs=1e-5)
    assert explanation_reliance(model, clevr, rows[:1]) == {}


def test_explanation_cases_read_each_trajectory_once_whatever_its_hindsight_copies(clevr):
    from kalm.collect import collect_rollouts

    def cases(hindsight):
        data = collect_rollouts(
            clevr, episodes=30, seed=3, random_fraction=0.3, hindsight=hindsight, progress=False
        )
        return explanation_cases(data.dataset.with_format("numpy"), 12)

    plain, relabelled = cases(0), cases(2)
    assert len(plain) == 12 and all(row["success"] for row in plain)
    assert [(r["episode_id"], r["goal_id"]) for r in relabelled] == [
        (r["episode_id"], r["goal_id"]) for r in plain
    ]
