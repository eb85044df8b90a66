"""The behaviour policy (scripted experts on the 91-d state) and the composed hard tasks."""

import numpy as np
import pytest

from kalm.envs.metaworld import judges
from kalm.envs.metaworld.policy import ExpertPolicy, expert_action, expert_observation
from kalm.envs.metaworld.tasks import get_task
from kalm.errors import KalmError


def test_experts_solve_the_training_tasks_with_noise(metaworld, run_episode):
    successes = [
        run_episode(goal.id, seed=seed, noise=0.1).success[-1]
        for goal in metaworld.goals("train")
        for seed in (0, 1)
    ]
    assert np.mean(successes) >= 0.9


def test_expert_sees_metaworld_own_observation(mw_env):
    observation, _ = mw_env.reset(seed=1, options={"goal": "hammer", "level": "hard"})
    raw = mw_env._scene.env._get_obs()
    rebuilt = expert_observation(observation, get_task("hammer").experts[0])
    np.testing.assert_allclose(rebuilt[:18], raw[:18], atol=1e-6)
    np.testing.assert_allclose(rebuilt[36:], mw_env._scene.env._target_pos, atol=1e-6)


def test_noise_is_gaussian_clipped_and_seeded(mw_env):
    observation, _ = mw_env.reset(seed=0, options={"goal": "push"})
    clean = expert_action(observation, "push")
    noisy = [ExpertPolicy(noise=0.5, rng=np.random.default_rng(9))(observation, "push") for _ in range(2)]
    np.testing.assert_array_equal(noisy[0], noisy[1])
    assert noisy[0].dtype == np.float32 and np.abs(noisy[0]).max() <= 1.0 and not np.allclose(noisy[0], clean)
    np.testing.assert_allclose(ExpertPolicy(noise=0.0)(observation, "push"), np.clip(clean, -1, 1), rtol=1e-6)
    with pytest.raises(KalmError, match=r"noise -0\.1 is invalid; expected a standard deviation >= 0"):
        ExpertPolicy(noise=-0.1)


@pytest.mark.parametrize(
    ("task", "first_subgoal", "horizon"),
    [
        ("make-coffee", judges.mug_in_place, 100),  # within the episode horizon (70-80 steps without noise)
        (
            "locked-door-open",
            judges.lock_open,
            220,
        ),  # 148-182 steps: longer than an episode (README, Meta-World)
    ],
)
def test_composed_tasks_are_solved_by_the_two_experts_in_sequence(
    metaworld, run_episode, task, first_subgoal, horizon
):
    for seed in (0, 1):
        episode = run_episode(task, seed=seed, horizon=horizon)
        assert episode.success[-1], (task, seed)
        first = np.flatnonzero(first_subgoal(episode.observations))
        assert first.size and first[0] < len(episode.observations) - 5  # the first sub-goal came well before
        assert metaworld.success(task, episode.observations)[-1]


def test_the_locked_door_stays_shut_until_unlocked(run_episode):
    def door_expert_only(observation, task):  # door-open's expert pulls the handle and ignores the lock
        return expert_action(observation, "door-open").astype(np.float32)

    episode = run_episode("locked-door-open", seed=0, horizon=80, policy=door_expert_only)
    angles = judges.door_angle(episode.observations)
    assert not judges.lock_open(episode.observations).any() and np.abs(angles).max() < 0.05
    assert not episode.success.any()


def test_pressing_the_coffee_button_alone_does_not_make_coffee(run_episode):
    def button_only(observation, task):
        return expert_action(observation, "coffee-button").astype(np.float32)

    episode = run_episode("make-coffee", seed=3, horizon=60, policy=button_only)
    assert judges.coffee_button_pressed(episode.observations).any()
    assert not episode.success.any()
