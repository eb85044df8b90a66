import numpy as np
import pytest

from kalm.collect import collect_rollouts
from kalm.envs.clevr.specs import parse_spec
from kalm.errors import ConfigError


@pytest.fixture(scope="module")
def collected():
    from kalm.envs import get_suite

    return collect_rollouts(get_suite("clevr"), episodes=40, seed=7, random_fraction=0.25, progress=False)


def test_rows_are_consistent_with_the_judge_and_reward(clevr, collected):
    for row in collected.dataset.with_format("numpy"):
        observations = row["observations"]
        assert observations.shape == (row["length"] + 1, 10)
        np.testing.assert_allclose(clevr.rewards(row["goal_id"], observations), row["rewards"], atol=1e-4)
        reached = clevr.success(row["goal_id"], observations)
        failed = clevr.failure(row["goal_id"], observations) & ~reached
        assert row["success"] == reached[-1] and row["terminated"] == (reached[-1] or failed[-1])
        assert not (reached[:-1] | failed[:-1]).any()  # episodes end at the first success or failure
        assert row["truncated"] == (not row["terminated"] and row["length"] == 50)
        assert row["instruction"] in clevr.goal("train", row["goal_id"]).sentences


def test_collection_is_reproducible_per_episode(clevr, collected):
    prefix = collect_rollouts(clevr, episodes=10, seed=7, random_fraction=0.25, progress=False).dataset
    for a, b in zip(
        prefix.with_format("numpy"), collected.dataset.with_format("numpy").select(range(10)), strict=True
    ):
        assert a["goal_id"] == b["goal_id"] and a["seed"] == b["seed"]
        np.testing.assert_array_equal(a["observations"], b["observations"])


def test_behaviour_policy_data_is_mostly_successful(collected):
    # a quarter of the episodes explore at random, and under the failure rule those rarely succeed (~10 %)
    assert collected.summary["success_rate"] > 0.6
    assert collected.summary["sources"] == {"real": 40}


def test_bad_settings_are_rejected(clevr):
    with pytest.raises(ConfigError, match="episodes=0 is invalid"):
        collect_rollouts(clevr, episodes=0)
    with pytest.raises(ConfigError, match="random_fraction=1.5 is invalid"):
        collect_rollouts(clevr, episodes=1, random_fraction=1.5)


@pytest.fixture(scope="module")
def relabelled():
    from kalm.envs import get_suite

    return collect_rollouts(
        get_suite("clevr"), episodes=40, seed=7, random_fraction=0.25, hindsight=2, progress=False
    )


def test_hindsight_copies_are_true_rollouts_of_their_new_goal(clevr, relabelled):
    rows = list(relabelled.dataset.with_format("numpy"))
    parents = {}
    copies = 0
    for row in rows:
        if row["episode_id"] not in parents:
            parents[row["episode_id"]] = row
            continue
        copies += 1
        parent, observations = parents[row["episode_id"]], row["observations"]
        assert row["goal_id"] != parent["goal_id"]
        np.testing.assert_array_equal(observations, parent["observations"][: row["length"] + 1])
        np.testing.assert_array_equal(row["actions"], parent["actions"][: row["length"]])
        outcome = clevr.outcome(row["goal_id"], "train", observations)
        assert outcome.success and outcome.length == row["length"]  # cut at the new goal's first success
        assert not clevr.success(row["goal_id"], observations[[0, 0]])[0]  # it did not hold from the start
        np.testing.assert_allclose(clevr.rewards(row["goal_id"], observations), row["rewards"], atol=1e-4)
        assert row["terminated"] and row["success"] and not row["truncated"]
        assert row["instruction"] in clevr.goal("train", row["goal_id"]).sentences
        moved = np.linalg.norm(observations.reshape(-1, 5, 2) - observations[0].reshape(5, 2), axis=-1)
        assert np.argmax(moved.max(axis=0)) == parse_spec(row["goal_id"]).src  # about the ball it pushed
    assert copies == relabelled.summary["hindsight_copies"] > 0
    assert max(sum(r["episode_id"] == i for r in rows) for i in parents) <= 3  # at most 2 copies each


def test_hindsight_leaves_the_original_episodes_as_they_were(collected, relabelled):
    seen, originals = set(), []
    for row in relabelled.dataset.with_format("numpy"):
        if row["episode_id"] not in seen:
            seen.add(row["episode_id"])
            originals.append(row)
    assert len(originals) == 40
    for a, b in zip(originals, collected.dataset.with_format("numpy"), strict=True):
        assert a["goal_id"] == b["goal_id"] and a["instruction"] == b["instruction"]
        np.testing.assert_array_equal(a["observations"], b["observations"])


def test_hindsight_needs_an_environment_that_supports_it(clevr):
    from kalm.envs.base import EnvSuite
    from kalm.envs.clevr import ClevrSuite

    class Unrelabelled(ClevrSuite):  # CLEVR-Robot with the interface's default: no relabelling
        hindsight_candidates = EnvSuite.hindsight_candidates

    with pytest.raises(ConfigError, match="does not support hindsight relabelling.*expected hindsight=0"):
        collect_rollouts(Unrelabelled(), episodes=2, hindsight=1, progress=False)
    with pytest.raises(ConfigError, match="hindsight=-1 is invalid"):
        collect_rollouts(clevr, episodes=1, hindsight=-1)
