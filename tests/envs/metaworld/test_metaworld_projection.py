"""Decoded Meta-World states are put back on what the 91-d observation guarantees (``entities.project``)."""

import numpy as np
import torch

from kalm.envs.metaworld import entities as E


def test_project_keeps_empty_slots_empty_the_target_still_and_the_opening_clipped(metaworld, mw_env):
    initial, _ = mw_env.reset(seed=2, options={"goal": "door-open"})
    rng = np.random.default_rng(0)
    drifted = initial + rng.normal(0, 0.02, (5, E.OBS_DIM))
    drifted[:, E.OPENING] = [1.07, 0.5, -0.1, 1.0, 0.2]
    projected = metaworld.project_states(drifted, np.broadcast_to(initial, drifted.shape))
    empty = [entity for entity in E.ENTITIES if entity != "handle"]
    assert E.filled(initial) == ("handle",)
    for entity in empty:
        assert (projected[:, E.slot_index(entity)] == 0).all(), entity
    np.testing.assert_array_equal(projected[:, E.TARGET], np.broadcast_to(initial[E.TARGET], (5, 3)))
    np.testing.assert_allclose(projected[:, E.OPENING], [1.0, 0.5, 0.0, 1.0, 0.2])
    position, rotation = E.position_index("handle"), E.quaternion_index("handle")
    np.testing.assert_array_equal(
        projected[:, position], drifted[:, position]
    )  # the scene's entity is the model's
    np.testing.assert_array_equal(projected[:, E.GRIPPER], drifted[:, E.GRIPPER])
    np.testing.assert_allclose(np.linalg.norm(projected[:, rotation], axis=-1), 1.0)
    np.testing.assert_allclose(
        projected[:, rotation],
        drifted[:, rotation] / np.linalg.norm(drifted[:, rotation], axis=-1, keepdims=True),
    )
    assert metaworld.implausibility(np.vstack([initial, projected[3]])) is None


def test_real_states_are_unchanged_by_the_projection(metaworld, run_episode):
    for task in ("push", "make-coffee", "locked-door-open"):
        observations = run_episode(task, seed=3, noise=0.1, horizon=40).observations
        projected = metaworld.project_states(observations, observations[:1])
        np.testing.assert_allclose(projected, observations, atol=1e-6, err_msg=task)


def test_imagination_decodes_projected_states(metaworld, mw_env):
    """A grounded model's residual state head drifts in every dimension; fed through ``state_projection``, the
    decoded rollouts keep the observation's structure (and without it, they do not)."""
    from kalm.grounding.metrics import state_projection
    from kalm.grounding.model import GroundedLM, GroundingConfig

    torch.manual_seed(0)
    model = GroundedLM(
        GroundingConfig(
            backbone="tiny-llama", obs_dim=E.OBS_DIM, action_dim=4, discrete=False, finetune="full"
        )
    ).eval()
    with (
        torch.no_grad()
    ):  # a head that predicts changes everywhere (the zero-initialised one copies the state)
        model.codec.state_head.weight.normal_(0, 0.05)
    initial = np.stack([mw_env.reset(seed=s, options={"goal": "door-open"})[0] for s in (0, 1)])
    goals = ["open the door", "pull the door open"]
    free = model.generate_rollouts(goals, initial, horizon=6)
    projected = model.generate_rollouts(goals, initial, horizon=6, project=state_projection(metaworld))
    coffee_button = E.slot_index("coffee_button")
    assert np.abs(free.observations[:, 1:, coffee_button]).max() > 0
    assert (projected.observations[:, :, coffee_button] == 0).all()
    assert (projected.observations[:, :, E.OPENING] <= 1.0).all()
    np.testing.assert_allclose(
        projected.observations[:, :, E.TARGET], np.repeat(initial[:, None, E.TARGET], 7, axis=1), atol=1e-6
    )


def test_environments_without_a_projection_decode_without_a_callback(metaworld):
    from kalm.envs.base import EnvSuite
    from kalm.envs.clevr import ClevrSuite
    from kalm.grounding.metrics import state_projection

    class Unprojected(ClevrSuite):
        project_states = EnvSuite.project_states

    assert state_projection(Unprojected()) is None
    assert callable(state_projection(metaworld))
