"""Decoded CLEVR states are held by the table's walls, where the simulator's contacts would hold the balls."""

import numpy as np
import torch

from kalm.envs.clevr.physics import DIRECTION_NAMES, ClevrPhysics, action_index

SPREAD = np.array([[0.0, 0.0], [0.3, 0.3], [-0.3, 0.3], [0.3, -0.3], [-0.3, -0.3]])


def test_a_ball_decoded_past_a_wall_stops_where_the_simulator_stops_it(clevr):
    physics = ClevrPhysics()
    physics.set_positions(SPREAD)
    for _ in range(8):  # red pushed to the right wall and on against it
        physics.push(action_index(0, DIRECTION_NAMES.index("right")))
    held = physics.positions.reshape(-1)
    before = SPREAD.reshape(-1).copy()
    before[0] = 0.4  # red near the right wall ...
    decoded = before.copy()
    decoded[0] = 0.55  # ... and one push later, as the model decodes it, through the wall
    projected = clevr.project_states(decoded[None], SPREAD.reshape(1, -1))[0]
    np.testing.assert_allclose(projected[0], held[0], atol=0.011)  # contacts may press 0.01 into the wall
    np.testing.assert_array_equal(projected[1:], decoded[1:])
    assert clevr.implausibility(np.stack([before, decoded])) == "out_of_workspace"
    assert clevr.implausibility(np.stack([before, projected])) is None


def test_real_states_are_kept_by_the_projection(clevr):
    env = clevr.make()
    policy = clevr.behaviour_policy(noise=0.5, rng=np.random.default_rng(0))
    for seed in range(3):
        observation, info = env.reset(seed=seed, options={"goal": clevr.goals("train")[seed].id})
        states = [observation]
        for _ in range(30):
            observation, _, terminated, truncated, _ = env.step(policy(observation, info["goal_id"]))
            states.append(observation)
            if terminated or truncated:
                break
        states = np.stack(states)
        np.testing.assert_allclose(clevr.project_states(states, states[:1]), states, atol=0.011)


def test_imagination_decodes_states_on_the_table(clevr):
    from kalm.grounding.metrics import state_projection
    from kalm.grounding.model import GroundedLM, GroundingConfig

    torch.manual_seed(0)
    model = GroundedLM(
        GroundingConfig(backbone="tiny-llama", obs_dim=10, action_dim=40, discrete=True, finetune="full")
    ).eval()
    with torch.no_grad():  # a state head that drifts every ball off the table within a few steps
        model.codec.state_head.bias.fill_(0.2)
    initial = np.repeat(SPREAD.reshape(1, -1).astype(np.float32), 2, axis=0)
    goals = ["push the red ball to the left", "push the blue ball behind"]
    free = model.generate_rollouts(goals, initial, horizon=5)
    held = model.generate_rollouts(goals, initial, horizon=5, project=state_projection(clevr))
    assert np.abs(free.observations).max() > 0.5
    assert np.abs(held.observations).max() <= 0.45 + 1e-6
