"""The plausibility checks never reject real data, and they catch what real physics cannot do."""

import pytest

from kalm.collect import collect_rollouts
from kalm.envs import get_suite


@pytest.mark.parametrize(("env", "episodes"), [("clevr", 300), ("metaworld", 40)])
def test_real_episodes_are_plausible(env, episodes):
    suite = get_suite(env)
    dataset = collect_rollouts(suite, episodes=episodes, seed=11, random_fraction=0.2, progress=False).dataset
    verdicts = [suite.implausibility(row["observations"]) for row in dataset.with_format("numpy")]
    assert verdicts == [None] * episodes


def test_metaworld_checks_catch_teleports_and_escapes():
    suite = get_suite("metaworld")
    row = collect_rollouts(suite, episodes=1, seed=3, progress=False).dataset.with_format("numpy")[0]
    teleport = row["observations"].copy()
    teleport[2:, 0] += 0.3  # the hand jumps 30 cm in one step and stays there
    assert suite.implausibility(teleport) == "exceeds_dynamics"
    escaped = row["observations"].copy()
    escaped[-1, 2] = 2.0  # the hand two metres above the table
    assert suite.implausibility(escaped) == "out_of_workspace"
