"""Replay agreement: an imagined rollout's actions replayed in the simulator from its initial state."""

import numpy as np

from kalm.collect import run_episode
from kalm.imagine.replay import replay, replay_agreement


def _real_rows(clevr, count):
    env = clevr.make()
    goals = clevr.goals("train")
    rows = [
        run_episode(
            env,
            clevr.behaviour_policy(noise=0.0, rng=np.random.default_rng(i)),
            goal_id=goals[i].id,
            reset_seed=i,
            episode_id=i,
            env_name="clevr",
        )
        for i in range(count)
    ]
    env.close()
    return rows


def test_real_rollouts_replay_to_themselves(clevr):
    rows = [row for row in _real_rows(clevr, 6) if row["success"]]
    summary = replay_agreement(clevr, rows)
    assert summary["train"] == {
        "rollouts": len(rows),
        "replay_success": 1.0,
        "imagined_success": 1.0,
        "replay_success_of_imagined": 1.0,
        "parted_at": summary["train"]["parted_at"],
        "never_parted": 1.0,
    }
    assert np.isnan(summary["train"]["parted_at"])


def test_a_drifting_imagination_parts_from_physics_where_it_drifts(clevr):
    row = max(_real_rows(clevr, 6), key=lambda r: r["length"])
    imagined = dict(row, observations=row["observations"].copy())
    imagined["observations"][2:, 2] += 0.1  # blue drifts from step 2 on, which the real replay never shows
    summary = replay_agreement(clevr, [imagined])["train"]
    assert summary["parted_at"] == 2.0 and summary["never_parted"] == 0.0
    failed = dict(row, success=False)  # labelled unsuccessful: not counted among the labelled successes
    assert replay_agreement(clevr, [failed])["train"]["imagined_success"] == 0.0
    states, success = replay(
        clevr, row["goal_id"], "train", row["observations"], row["actions"], seed=row["seed"]
    )
    np.testing.assert_allclose(states, row["observations"], atol=1e-5)
    assert success == row["success"]
