import numpy as np
import pytest

from kalm.collect import collect_rollouts
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
