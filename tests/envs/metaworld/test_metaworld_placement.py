"""Placing 91-d states in the simulator (``placement.place``) and rendering them (``render_observation``)."""

import numpy as np
import pytest

from kalm.envs.metaworld import entities as E
from kalm.envs.metaworld.placement import TOLERANCE, place
from kalm.envs.metaworld.tasks import get_task, task_showing
from kalm.errors import UnknownNameError


def later_state(run_episode, task, steps=40):
    episode = run_episode(task, seed=5, noise=0.1, horizon=steps)
    return episode.observations[0], episode.observations[-1]


@pytest.mark.parametrize("task", ["pick-place", "door-open", "locked-door-open"])
def test_place_puts_a_real_state_back_into_a_freshly_reset_scene(metaworld, run_episode, task):
    start, state = later_state(run_episode, task)
    scene = metaworld.make().scene(get_task(task))
    scene.reset(seed=99)  # other object positions, door placement, arm pose
    assert np.abs(scene.observe(scene.env._get_obs()) - state).max() > 0.05
    assert place(scene, state) <= TOLERANCE
    shown = scene.observe(scene.env._get_obs())
    slots = [E.slot_index(entity) for entity in get_task(task).entities]
    for index in [slice(0, 7), *slots]:
        np.testing.assert_allclose(np.abs(shown[index]), np.abs(state[index]), atol=2 * TOLERANCE)
    assert place(scene, start) <= TOLERANCE  # and back to the first state of the episode


def test_the_scene_of_a_state_is_found_from_its_filled_slots():
    assert task_showing(("lock", "handle")).name == "door-unlock"
    assert task_showing(("target_object", "wall")).name == "reach-wall"
    assert task_showing(("lock", "handle", "soccer_ball")).name == "door-unlock"  # with a distractor ball
    with pytest.raises(UnknownNameError, match="no Meta-World task's scene holds the entities nail"):
        task_showing(("nail",))


@pytest.mark.render
def test_render_observation_depends_on_the_state_alone(metaworld, run_episode):
    """The arm's joints are not in the state: they are posed the same way for every state, so a state renders
    the same whatever was placed before, and a different state renders differently."""
    start, state = later_state(run_episode, "door-open", steps=60)
    first = metaworld.render_observation(state, size=64, goal_id="door-open").astype(float)
    before = metaworld.render_observation(start, size=64, goal_id="door-open").astype(float)
    again = metaworld.render_observation(state, size=64).astype(float)  # the scene found from the slots
    assert first.shape == (64, 64, 3)
    assert np.abs(again - first).mean() < 0.1 * np.abs(before - first).mean()


@pytest.mark.render
def test_side_by_side_gif_replays_from_the_imagined_initial_state(metaworld, tmp_path):
    """The report's GIF for Meta-World: the real replay starts from the rollout's initial state (its reset
    seed), so the two panels of the first frame show the same scene."""
    import imageio.v3 as iio

    from kalm.pipeline.figures import rollout_gif

    env = metaworld.make()
    seed, actions = 11, np.tile(np.array([[0.0, 1.0, 0.0, -1.0]], np.float32), (3, 1))
    observations = [env.reset(seed=seed, options={"goal": "window-close", "level": "easy"})[0]]
    observations += [env.step(action)[0] for action in actions]
    env.close()
    path = rollout_gif(
        metaworld,
        tmp_path / "imagined.gif",
        goal_id="window-close",
        level="easy",
        sentence="close the window",
        observations=np.stack(observations),
        actions=actions,
        seed=seed,
        size=48,
    )
    frames = iio.imread(path, index=None)
    assert len(frames) == 4
    left, right = frames[0][30:, :48].astype(float), frames[0][30:, 48:].astype(float)
    assert np.abs(left - right).mean() < 1.0
