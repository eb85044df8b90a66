"""State-only judges and rewards: on hand-built 91-d states, then against Meta-World on real episodes."""

import numpy as np
import pytest

from kalm.envs.metaworld import entities as E
from kalm.envs.metaworld import judges, rewards
from kalm.envs.metaworld.tasks import TASKS

EXACT = [name for name in TASKS if name not in ("reach", "reach-wall")]


def state(target=(0.0, 0.8, 0.1), hand=(0.0, 0.6, 0.2), **slots):
    """A 91-d observation: ``slots`` maps entities to positions (identity quaternion, w-x-y-z)."""
    observation = np.zeros(91, np.float32)
    observation[E.GRIPPER], observation[E.OPENING], observation[E.TARGET] = hand, 1.0, target
    for entity, position in slots.items():
        observation[E.slot_index(entity)] = [*position, 1.0, 0.0, 0.0, 0.0]
    return observation


def holds(task, observation):
    return bool(judges.success(task, observation[None])[0])


@pytest.mark.parametrize(("offset", "expected"), [(0.049, True), (0.051, False)])
def test_push_judge_is_metaworld_distance_test(offset, expected):
    assert holds("push", state(target_object=(0.0, 0.8 - offset, 0.1))) is expected
    assert holds("pick-place", state(target_object=(0.0, 0.8 - offset - 0.02, 0.1))) is expected


def test_axis_judges_read_the_right_axis():
    far_in_x = state(target=(0.2, 0.8, 0.1), button=(-0.3, 0.81, 0.1))
    assert holds("button-press", far_in_x)  # only y counts
    assert not holds("button-press", state(button=(0.0, 0.83, 0.1)))
    assert holds("button-press-wall", state(button=(0.0, 0.825, 0.1)))  # its threshold is 0.03
    assert holds("door-unlock", state(lock=(0.015, 0.5, 0.5)))
    assert holds("door-lock", state(lock=(0.3, 0.5, 0.115)))
    assert not holds("door-lock", state(lock=(0.0, 0.8, 0.13)))
    assert holds("window-open", state(window=(0.04, 0.0, 0.0)))
    assert not holds("window-close", state(window=(0.06, 0.0, 0.0)))


def test_reach_uses_the_finger_centre_below_the_hand():
    target = np.array([0.0, 0.8, 0.1])
    hand_above = tuple(target - E.TCP_OFFSET + [0.0, 0.0, 0.04])
    assert holds("reach", state(target=target, hand=hand_above))
    assert not holds("reach", state(target=target, hand=tuple(target + np.array([0.0, 0.0, 0.1]))))


def test_faucet_open_measures_the_shifted_handle():
    handle = np.array([0.0, 0.8, 0.1]) - judges.FAUCET_OPEN_OFFSET
    assert holds("faucet-open", state(faucet=handle))
    assert not holds("faucet-close", state(faucet=handle + np.array([0.08, 0.0, 0.0])))


def test_hammer_judges_how_far_the_nail_went_in():
    assert holds("hammer", state(nail=(0.24, judges.NAIL_REST_Y + 0.091, 0.11)))
    assert not holds("hammer", state(nail=(0.24, judges.NAIL_REST_Y + 0.08, 0.11)))


def test_make_coffee_needs_the_mug_in_place_and_the_button_pressed():
    machine = (0.0, 0.95, 0.0)
    pressed = (0.0, 0.95 + judges.COFFEE_BUTTON_FROM_MACHINE_Y, 0.3)
    released = (0.0, pressed[1] - 0.03, 0.3)
    target = (0.0, 0.73, 0.0)
    both = state(target=target, target_object=target, coffee_machine=machine, coffee_button=pressed)
    assert holds("make-coffee", both)
    assert not holds(
        "make-coffee",
        state(target=target, target_object=(0.1, 0.6, 0), coffee_machine=machine, coffee_button=pressed),
    )
    assert not holds(
        "make-coffee",
        state(target=target, target_object=target, coffee_machine=machine, coffee_button=released),
    )


def test_lock_judge_follows_the_door_as_it_swings():
    handle, lock = np.array([0.1, 0.6, 0.1]), np.array([0.1 + judges.UNLOCK_X_FROM_HANDLE, 0.65, 0.2])
    shut = state(target=(-0.3, 0.4, 0.15), handle=handle, lock=lock)
    assert judges.lock_open(shut[None])[0]
    angle = -0.7  # the door turned about z: the door link's quaternion fills the lock slot
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    swung = state(target=(-0.3, 0.4, 0.15), handle=handle, lock=handle + turn @ (lock - handle))
    swung[E.quaternion_index("lock")] = [np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)]
    assert judges.lock_open(swung[None])[0]
    swung[E.quaternion_index("lock")] = [1.0, 0.0, 0.0, 0.0]  # same positions, door frame not turned
    assert not judges.lock_open(swung[None])[0]


def test_rewards_are_potential_differences_plus_ten_on_success():
    start = state(target_object=(0.0, 0.6, 0.1))
    closer = state(target_object=(0.0, 0.7, 0.1))
    done = state(target_object=(0.0, 0.79, 0.1))
    observations = np.stack([start, closer, done])
    phi, reached = rewards.potential("push", observations, start)
    assert reached.tolist() == [False, False, True] and phi[2] == 10.0 and 0 <= phi[0] < phi[1] < 10
    expected = [phi[1] - phi[0], 10 - phi[1] + 10]
    np.testing.assert_allclose(rewards.rewards("push", observations), expected, rtol=1e-5)


def test_judges_and_potentials_are_vectorised_over_time(run_episode):
    episode = run_episode("door-open", seed=4)
    per_step = [judges.success("door-open", o[None])[0] for o in episode.observations]
    assert judges.success("door-open", episode.observations).tolist() == per_step
    phi, _ = rewards.potential("door-open", episode.observations, episode.observations[0])
    first = episode.observations[0]
    single = [rewards.potential("door-open", o[None], first)[0][0] for o in episode.observations]
    np.testing.assert_allclose(phi, single, rtol=1e-9)


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_judges_agree_with_metaworld_success_on_real_episodes(metaworld, run_episode, noise):
    for index, name in enumerate(TASKS):
        horizon = 220 if name == "locked-door-open" else 140 if name == "make-coffee" else 100
        episode = run_episode(name, seed=40 + index, noise=noise, horizon=horizon)
        judged = metaworld.success(name, episode.observations)
        agreement = np.mean(judged == episode.success)
        assert agreement >= (1.0 if name in EXACT else 0.95), (name, agreement)


def test_env_rewards_are_the_state_only_rewards_with_metaworld_success(metaworld, run_episode):
    for index, name in enumerate(TASKS):
        if name in ("make-coffee", "locked-door-open"):
            continue
        episode = run_episode(name, seed=70 + index, noise=0.1)
        phi, _ = rewards.potential(
            name, episode.observations, episode.observations[0], np.r_[False, episode.success]
        )
        expected = np.diff(phi) + 10.0 * episode.success
        np.testing.assert_allclose(episode.rewards, expected, atol=1e-4, err_msg=name)
        if name in EXACT:
            state_only = metaworld.rewards(name, episode.observations)
            np.testing.assert_allclose(state_only, episode.rewards, atol=1e-4)
        if episode.success[-1]:  # the expert made progress: the rewards sum to phi's rise plus the bonus
            assert episode.rewards.sum() > 10.0 and episode.rewards[-1] >= 10.0 - 1e-4, name


@pytest.mark.slow
def test_judge_agreement_table_over_expert_and_noisy_episodes(metaworld, run_episode):
    """10 expert + 10 noisy (std 0.3) episodes per task; prints per-task agreement (``pytest -m slow -s``)."""
    print(f"\n{'task':18s} {'steps':>6s} {'step agreement':>15s} {'same first success':>19s}")
    for name in TASKS:
        horizon = 220 if name == "locked-door-open" else 140 if name == "make-coffee" else 100
        agree = steps = same_episode = 0
        for index in range(20):
            episode = run_episode(name, seed=500 + index, noise=0.0 if index < 10 else 0.3, horizon=horizon)
            judged = metaworld.success(name, episode.observations)
            agree += int((judged == episode.success).sum())
            steps += len(judged)
            same_episode += int(np.array_equal(judged, episode.success))
        print(f"{name:18s} {steps:6d} {agree / steps:15.4f} {same_episode / 20:19.2f}")
        assert agree / steps >= (1.0 if name in EXACT else 0.98), name
