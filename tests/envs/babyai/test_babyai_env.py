"""The ``kalm/BabyAI-v0`` environment: determinism, placement from an observation, horizons, errors,
rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from kalm.envs.babyai.scene import OBS_DIM, decode, encode
from kalm.errors import KalmError, UnknownNameError

from .conftest import play


def test_the_same_seed_gives_the_same_scene_instruction_and_episode(babyai):
    runs = [
        play(
            babyai,
            "train",
            "putnext-red-box-blue-box",
            7,
            babyai.behaviour_policy(noise=0.3, rng=np.random.default_rng(3)),
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0]["observations"], runs[1]["observations"])
    assert runs[0]["actions"] == runs[1]["actions"]
    assert runs[0]["infos"][-1]["instruction"] == runs[1]["infos"][-1]["instruction"]
    other = play(
        babyai,
        "train",
        "putnext-red-box-blue-box",
        8,
        babyai.behaviour_policy(noise=0.3, rng=np.random.default_rng(3)),
    )
    assert not np.array_equal(other["observations"][0], runs[0]["observations"][0])


def test_an_observation_places_the_scene_and_the_episode_replays(babyai, bot_episodes):
    for episode in bot_episodes["hard", 0.2][:10] + bot_episodes["train", 1.0][:10]:
        env = babyai.make()
        options = {
            "goal": episode["goal_id"],
            "level": episode["level"],
            **babyai.start_options(episode["observations"][0]),
        }
        observation, _ = env.reset(seed=123, options=options)
        states = [observation]
        for action in episode["actions"]:
            states.append(env.step(action)[0])
        np.testing.assert_array_equal(np.stack(states), episode["observations"])


def test_observations_encode_and_decode_losslessly(babyai, bot_episodes):
    space = babyai.make().observation_space
    for episode in bot_episodes["train", 1.0][:20]:
        for observation in episode["observations"]:
            assert observation.shape == (OBS_DIM,) and space.contains(observation)
            np.testing.assert_array_equal(encode(decode(observation)), observation)


@pytest.mark.parametrize(("level", "horizon"), [("train", 32), ("easy", 32), ("hard", 64)])
def test_episodes_last_their_levels_horizon_and_report_the_protocols_info(babyai, level, horizon):
    assert babyai.protocol(level).horizon == horizon
    goal = babyai.goals(level)[0].id
    episode = play(babyai, level, goal, 0, lambda observation, goal_id: 6)  # "done" changes nothing
    assert len(episode["actions"]) == horizon and episode["truncated"] and not episode["terminated"]
    assert set(episode["infos"][-1]) >= {
        "goal_id",
        "level",
        "instruction",
        "success",
        "failure",
        "babyai_success",
    }
    assert episode["infos"][-1]["goal_id"] == goal and episode["infos"][-1]["level"] == level
    assert babyai.spec.horizon >= horizon


def test_gym_id_bad_actions_and_unknown_goals(babyai):
    env = gym.make("kalm/BabyAI-v0")
    observation, info = env.reset(seed=0)
    assert observation.shape == (OBS_DIM,) and info["level"] == "train"
    raw = babyai.make()
    with pytest.raises(KalmError, match="call reset"):
        raw.step(0)
    raw.reset(seed=0)
    with pytest.raises(KalmError, match=r"BabyAI action 7 is invalid; expected an integer in \[0, 7\)"):
        raw.step(7)
    with pytest.raises(UnknownNameError, match="babyai has no easy goal 'goto-red-box'"):
        raw.reset(options={"goal": "goto-red-box", "level": "easy"})


def test_renders_the_room_of_any_observation(babyai, bot_episodes):
    observations = bot_episodes["train", 0.2][0]["observations"]
    image = babyai.render_observation(observations[0], size=96)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8 and image.std() > 10
    assert not np.array_equal(babyai.render_observation(observations[-1], size=96), image)  # the agent moved
    observation = observations[0]
    broken = observation.copy()
    broken[5] = 9  # no such type
    assert (babyai.render_observation(broken, size=96) == 128).all()
    env = babyai.make(render_mode="rgb_array", render_size=64)
    env.reset(seed=0)
    assert env.render().shape == (64, 64, 3)
