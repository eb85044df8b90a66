"""The 91-d entity-slot observation: layout, which slots each task fills, distractors."""

import numpy as np
import pytest

from kalm.envs.goals import LEVELS
from kalm.envs.metaworld import entities as E
from kalm.envs.metaworld.tasks import TASKS

EXPECTED_SLOTS = {
    "reach": {"target_object"},
    "push": {"target_object"},
    "pick-place": {"target_object"},
    "button-press": {"button"},
    "door-unlock": {"lock", "handle"},
    "door-open": {"handle"},
    "window-open": {"window"},
    "faucet-open": {"faucet"},
    "coffee-push": {"target_object", "coffee_machine", "coffee_button"},
    "coffee-button": {"target_object", "coffee_machine", "coffee_button"},
    "reach-wall": {"target_object", "wall"},
    "push-wall": {"target_object", "wall"},
    "pick-place-wall": {"target_object", "wall"},
    "button-press-wall": {"button", "wall"},
    "door-lock": {"lock", "handle"},
    "door-close": {"handle"},
    "window-close": {"window"},
    "faucet-close": {"faucet"},
    "hammer": {"hammer", "nail"},
    "soccer": {"soccer_ball"},
    "make-coffee": {"target_object", "coffee_machine", "coffee_button"},
    "locked-door-open": {"lock", "handle"},
}


def test_layout_is_gripper_opening_target_then_twelve_slots_of_seven():
    assert E.OBS_DIM == 91 and len(E.ENTITIES) == 12
    assert (E.GRIPPER, E.OPENING, E.TARGET) == (slice(0, 3), 3, slice(4, 7))
    assert E.slot_index("target_object") == slice(7, 14)
    assert E.slot_index("soccer_ball") == slice(84, 91)
    assert E.position_index("coffee_machine") == slice(56, 59) and E.quaternion_index("nail") == slice(80, 84)
    starts = [E.slot_start(entity) for entity in E.ENTITIES]
    assert starts == list(range(7, 91, 7))


@pytest.mark.parametrize("level", LEVELS)
def test_every_level_builds_resets_and_fills_the_expected_slots(metaworld, mw_env, level):
    for goal in metaworld.goals(level):
        observation, info = mw_env.reset(seed=3, options={"goal": goal.id, "level": level})
        assert (info["goal_id"], info["level"], info["success"]) == (goal.id, level, False)
        assert info["instruction"] in goal.sentences
        assert observation.shape == (91,) and observation.dtype == np.float32
        assert np.isfinite(observation).all()
        assert set(E.filled(observation)) == EXPECTED_SLOTS[goal.id], goal.id
        raw = mw_env._scene.env
        np.testing.assert_allclose(observation[E.GRIPPER], raw.get_endeff_pos(), atol=1e-6)
        np.testing.assert_allclose(observation[E.TARGET], raw._target_pos, atol=1e-6)
        assert 0.0 <= observation[E.OPENING] <= 1.0
        assert not metaworld.success(goal.id, np.stack([observation, observation]))[0]  # not done at reset


def test_observed_slots_copy_metaworld_own_observation(mw_env):
    for name in ("push", "button-press", "hammer", "locked-door-open"):
        mw_env.reset(seed=5, options={"goal": name, "level": TASKS[name].level})
        observation, _, _, _, _ = mw_env.step(np.array([0.3, -0.2, 0.1, 0.5], np.float32))
        raw = mw_env._scene.env._get_obs()
        np.testing.assert_allclose(observation[:4], raw[:4], atol=1e-6)
        for index, entity in enumerate(TASKS[name].observed):
            own = raw[4 + 7 * index : 11 + 7 * index]
            np.testing.assert_allclose(observation[E.slot_index(entity)], own, atol=1e-6)


def test_initial_positions_are_random_and_seeded(mw_env):
    def first(seed):
        return mw_env.reset(seed=seed, options={"goal": "pick-place"})[0]

    a, again, other = first(11), first(11), first(12)
    np.testing.assert_array_equal(a, again)
    puck = E.position_index("target_object")
    assert np.linalg.norm(a[puck] - other[puck]) > 1e-3
    assert np.linalg.norm(a[E.TARGET] - other[E.TARGET]) > 1e-3


def test_the_slot_mapping_is_stable_across_steps(run_episode):
    episode = run_episode("coffee-push", seed=2)
    filled = {frozenset(E.filled(observation)) for observation in episode.observations}
    assert filled == {frozenset(EXPECTED_SLOTS["coffee-push"])}
    machine = episode.observations[:, E.position_index("coffee_machine")]
    np.testing.assert_allclose(machine, machine[0:1].repeat(len(machine), 0), atol=1e-6)  # a fixed body


def test_a_distractor_fills_one_irrelevant_slot_with_a_real_resting_pose(metaworld):
    env = metaworld.make(distractors=1)
    plain = metaworld.make()
    for seed, name in enumerate(("push", "door-open", "soccer")):
        observation, _ = env.reset(seed=seed, options={"goal": name, "level": TASKS[name].level})
        clean, _ = plain.reset(seed=seed, options={"goal": name, "level": TASKS[name].level})
        (extra,) = set(E.filled(observation)) - EXPECTED_SLOTS[name]
        assert set(env.distractor_poses) == {extra}
        own = [E.slot_index(entity) for entity in EXPECTED_SLOTS[name]]
        for index in [*own, E.GRIPPER, E.TARGET]:
            np.testing.assert_array_equal(observation[index], clean[index])
        pose = observation[E.slot_index(extra)]
        assert 0.3 < pose[1] < 1.0 and -0.6 < pose[0] < 0.6  # on the table, in front of the robot
        stepped, _, _, _, _ = env.step(np.zeros(4, np.float32))
        np.testing.assert_array_equal(stepped[E.slot_index(extra)], pose)  # stays put
        assert not metaworld.success(name, np.stack([observation, stepped]))[0]
    env.close()
    plain.close()
