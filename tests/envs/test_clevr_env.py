import gymnasium as gym
import numpy as np
import pytest

from kalm.envs import get_suite
from kalm.envs.clevr.env import ClevrRobotEnv
from kalm.errors import KalmError, UnknownNameError


def test_registered_with_gymnasium():
    env = gym.make("kalm/CLEVR-Robot-v0")
    observation, info = env.reset(seed=0)
    assert observation.shape == (10,) and observation.dtype == np.float32
    assert env.action_space == gym.spaces.Discrete(40)
    assert set(info) == {"goal_id", "level", "instruction", "success", "failure"}
    env.close()


def test_unknown_environment_lists_registered_ones():
    with pytest.raises(
        UnknownNameError, match=r"^unknown environment 'clever'; registered: (\w+, )*clevr(, \w+)*$"
    ):
        get_suite("clever")


def test_seeded_reset_and_steps_are_reproducible():
    def rollout(seed):
        env = ClevrRobotEnv()
        observation, info = env.reset(seed=seed)
        trace = [observation]
        for action in (3, 17, 25, 38):
            trace.append(env.step(action)[0])
        return np.stack(trace), info["goal_id"], info["instruction"]

    first, again, other = rollout(11), rollout(11), rollout(12)
    assert np.array_equal(first[0], again[0]) and first[1:] == again[1:]
    assert not np.array_equal(first[0], other[0])


def test_reset_never_starts_at_the_goal(clevr):
    env = ClevrRobotEnv()
    for seed, goal in enumerate(clevr.goals("train")):
        observation, _ = env.reset(seed=seed, options={"goal": goal.id})
        assert not clevr.success(goal.id, np.stack([observation, observation]))[0]


def test_episode_terminates_on_success_with_the_bonus():
    env = ClevrRobotEnv()
    positions = np.array([[-0.1, 0.3], [0.0, 0.0], [-0.4, -0.4], [0.4, -0.4], [0.4, 0.4]])
    env.reset(seed=0, options={"goal": "red-left-of-blue", "positions": positions})
    push_red_to_the_front = 3
    _, reward, terminated, truncated, _ = env.step(push_red_to_the_front)  # 60 degrees off: not yet
    assert not terminated and 0 < reward < 100
    _, reward, terminated, truncated, info = env.step(push_red_to_the_front)  # now left of blue, close
    assert terminated and not truncated and info["success"]
    assert reward > 100


def test_truncates_at_the_horizon():
    env = ClevrRobotEnv(horizon=7)
    env.reset(seed=0, options={"goal": "gather-green", "level": "hard"})
    flags = [env.step(1)[2:4] for _ in range(7)]
    assert flags[-1] == (False, True)
    assert all(flag == (False, False) for flag in flags[:-1])


def test_novel_levels_can_be_reset(clevr):
    env = ClevrRobotEnv()
    for level in ("rephrase", "easy", "hard"):
        _, info = env.reset(seed=1, options={"level": level})
        assert info["level"] == level
        assert info["instruction"] in clevr.goal(level, info["goal_id"]).sentences


def test_bad_inputs_give_clear_errors():
    env = ClevrRobotEnv()
    with pytest.raises(KalmError, match="call reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(KalmError, match=r"action 40 is invalid"):
        env.step(40)
    with pytest.raises(UnknownNameError, match="unknown goal level"):
        env.reset(options={"level": "expert"})


def test_env_rewards_match_the_state_only_reward_function(clevr):
    env = ClevrRobotEnv()
    rng = np.random.default_rng(0)
    observation, info = env.reset(seed=5)
    observations, rewards = [observation], []
    for _ in range(20):
        observation, reward, terminated, truncated, _ = env.step(int(rng.integers(40)))
        observations.append(observation)
        rewards.append(reward)
        if terminated:
            break
    assert np.allclose(clevr.rewards(info["goal_id"], np.stack(observations)), rewards, atol=1e-4)


def test_scripted_policy_reaches_training_goals(clevr):
    env = ClevrRobotEnv()
    policy = clevr.behaviour_policy(noise=0.0, rng=np.random.default_rng(0))
    successes = []
    for seed in range(100):
        observation, info = env.reset(seed=seed)
        while True:  # until the level's protocol ends the episode
            observation, _, terminated, truncated, info = env.step(policy(observation, info["goal_id"]))
            if terminated or truncated:
                break
        successes.append(info["success"])
    assert np.mean(successes) >= 0.9


@pytest.mark.render
def test_render_rgb_array():
    env = ClevrRobotEnv(render_mode="rgb_array", render_size=64)
    env.reset(seed=0)
    image = env.render()
    env.close()
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert image.std() > 10  # a scene, not a blank frame
