"""Judging decoded states in windows (``stop_every``, the accelerator default): one host copy per window, the
same rollouts as judging every state when decoding is greedy."""

import numpy as np
import pytest
import torch


@pytest.mark.parametrize("every", [3, 8])
def test_windowed_stop_gives_the_rollouts_of_per_state_stops(make_model, episodes, every):
    model = make_model().eval()
    torch.nn.init.normal_(model.codec.state_head.weight, std=0.05)  # imagined states move, and feed back
    stops = {0: 2, 1: 5, 3: 4}
    calls = []

    def stop(observations, rows):
        calls.append((observations.device.type, observations.shape[1] - 1))
        return torch.tensor([stops.get(row, 99) == observations.shape[1] - 1 for row in rows.tolist()])

    initial = np.stack([row["observations"][0] for row in episodes[:4]])
    goals = ["go", "push the red ball to the left", "go", "move the blue ball"]
    each = model.generate_rollouts(goals, initial, horizon=8, stop=stop, stop_every=1)
    calls.clear()
    windowed = model.generate_rollouts(goals, initial, horizon=8, stop=stop, stop_every=every)
    assert windowed.lengths.tolist() == each.lengths.tolist() == [2, 5, 8, 4]
    assert windowed.stopped.tolist() == each.stopped.tolist() == [True, True, False, True]
    for b in range(4):
        for got, want in zip(windowed.rollout(b), each.rollout(b), strict=True):
            np.testing.assert_allclose(got, want, atol=1e-5)
    assert {device for device, _ in calls} == {"cpu"}
    assert sorted({steps for _, steps in calls}) == list(range(1, 9))  # every state judged, in windows


def test_clevr_projects_decoded_states_on_their_device_as_on_the_host(clevr):
    from kalm.grounding.metrics import state_projection

    states = torch.randn(64, 10) * 0.6  # some balls past the table's edge
    initial = torch.zeros(64, 10)
    project = state_projection(clevr)
    projected = project(states, initial)
    assert isinstance(projected, torch.Tensor) and projected.dtype == states.dtype
    np.testing.assert_array_equal(projected.numpy(), clevr.project_states(states.numpy(), initial.numpy()))
    assert (projected != states).any()  # the walls held some balls
    assert project.__func__ is type(clevr).project_state_tensors  # tensor operations, no host round trip
