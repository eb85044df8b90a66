"""The gymnasium environment: episodes, seeding, errors, rendering, collection through ``kalm collect``."""

import numpy as np
import pytest

from kalm.collect import collect_rollouts
from kalm.envs.metaworld import entities as E
from kalm.envs.metaworld.env import MetaWorldEnv
from kalm.errors import KalmError, UnknownNameError


def test_seeded_episodes_are_reproducible(metaworld):
    def rollout(seed):
        env = metaworld.make()
        observation, info = env.reset(seed=seed, options={"goal": "push"})
        trace = [observation]
        for action in np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4):
            trace.append(env.step(action)[0])
        env.close()
        return np.stack(trace), info["instruction"]

    first, again, other = rollout(7), rollout(7), rollout(8)
    np.testing.assert_array_equal(first[0], again[0])
    assert first[1] == again[1]
    assert not np.array_equal(first[0], other[0])


def test_expert_episode_terminates_on_metaworld_success(run_episode):
    episode = run_episode("button-press", seed=1)
    assert episode.terminated and not episode.truncated
    assert episode.success[-1] and not episode.success[:-1].any()
    assert len(episode.actions) < 100 and episode.actions.dtype == np.float32
    assert episode.actions.shape[1] == 4
    assert episode.rewards[-1] > 10.0  # the last press plus the success bonus


def test_truncates_at_the_horizon(mw_env):
    mw_env.horizon = 5
    mw_env.reset(seed=0, options={"goal": "window-open"})
    flags = [mw_env.step(np.zeros(4, np.float32))[2:4] for _ in range(5)]
    mw_env.horizon = 100
    assert flags[-1] == (False, True) and all(flag == (False, False) for flag in flags[:-1])


def test_actions_are_clipped_and_bad_ones_rejected(metaworld):
    env = metaworld.make()
    with pytest.raises(KalmError, match="call reset"):
        env.step(np.zeros(4))
    env.reset(seed=0, options={"goal": "reach"})
    hand = env.step(np.array([5.0, 0.0, 0.0, 0.0]))[0][E.GRIPPER]
    env.reset(seed=0, options={"goal": "reach"})
    np.testing.assert_allclose(env.step(np.array([1.0, 0.0, 0.0, 0.0]))[0][E.GRIPPER], hand)
    with pytest.raises(KalmError, match=r"action \[1.0, 2.0\] is invalid; expected 4 finite numbers"):
        env.step([1.0, 2.0])
    with pytest.raises(KalmError, match="expected 4 finite numbers"):
        env.step([np.nan, 0, 0, 0])
    with pytest.raises(UnknownNameError, match="no hard goal 'push'; valid: hammer, soccer"):
        env.reset(options={"goal": "push", "level": "hard"})
    with pytest.raises(UnknownNameError, match="unknown Meta-World camera 'side'"):
        MetaWorldEnv(camera="side")
    env.close()


def test_novel_levels_reset_with_their_own_instructions(metaworld, mw_env):
    for level in ("rephrase", "easy", "hard"):
        _, info = mw_env.reset(seed=2, options={"level": level})
        assert info["level"] == level
        assert info["instruction"] in metaworld.goal(level, info["goal_id"]).sentences
    _, train = mw_env.reset(seed=2, options={"goal": "push", "level": "train"})
    _, rephrase = mw_env.reset(seed=2, options={"goal": "push", "level": "rephrase"})
    assert train["instruction"] != rephrase["instruction"]


def test_collect_writes_valid_continuous_rollouts(metaworld):
    result = collect_rollouts(metaworld, episodes=6, seed=3, noise=0.1, progress=False)
    assert result.summary["episodes"] == 6 and result.summary["success_rate"] >= 5 / 6
    for row in result.dataset.with_format("numpy"):
        assert row["observations"].shape == (row["length"] + 1, 91)
        assert row["actions"].shape == (row["length"], 4) and row["actions"].dtype == np.float32
        assert np.abs(row["actions"]).max() <= 1.0
        assert row["success"] == row["terminated"]
        if row["goal_id"] != "reach":  # reach's judge may call success one step before or after Meta-World
            assert row["success"] == bool(metaworld.success(row["goal_id"], row["observations"])[-1])
        assert row["instruction"] in metaworld.goal("train", row["goal_id"]).sentences


@pytest.mark.render
def test_render_rgb_array_turns_the_corner_camera_upright(metaworld):
    env = metaworld.make(render_mode="rgb_array", render_size=64)
    env.reset(seed=0, options={"goal": "push"})
    image = env.render()
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8 and image.std() > 10
    top_view = MetaWorldEnv(render_mode="rgb_array", render_size=64, camera="topview")
    top_view.reset(seed=0, options={"goal": "push"})
    assert top_view.render().shape == (64, 64, 3)
    # Upright: the floor and table fill the lower half, the plain backdrop the upper half.
    assert image[32:].std() > image[:16].std()
    env.close()
    top_view.close()


def test_collect_config_file_runs_through_the_cli(tmp_path, capsys):
    from pathlib import Path

    from kalm.cli import main
    from kalm.data import read_info, read_rollouts

    config = Path(__file__).resolve().parents[3] / "configs/collect/metaworld.yaml"
    out = tmp_path / "real"
    arguments = ["--config", str(config), "--episodes", "3", "--out", str(out), "--progress", "false"]
    assert main(["collect", *arguments]) == 0
    assert len(read_rollouts(out)) == 3 and read_info(out)["env"] == "metaworld"
    assert "metaworld real rollouts" in capsys.readouterr().out


def test_max_scenes_bounds_the_built_environments_without_changing_episodes(metaworld, mw_env):
    env = metaworld.make(max_scenes=2)
    first, _ = env.reset(seed=4, options={"goal": "reach"})
    for name in ("push", "door-open", "faucet-open"):
        env.reset(seed=4, options={"goal": name})
        assert len(env._scenes) <= 2
    again, _ = env.reset(seed=4, options={"goal": "reach"})  # rebuilt from scratch
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, mw_env.reset(seed=4, options={"goal": "reach"})[0])
    with pytest.raises(KalmError, match="max_scenes=1 are invalid"):
        MetaWorldEnv(max_scenes=1)
    env.close()
