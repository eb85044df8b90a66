"""Grounded models through the local hub: push as a version, load by tag, identical outputs."""

import torch

from kalm.grounding.hub import load_grounded, push_grounded
from kalm.grounding.prompts import Task


def test_push_then_load_by_tag_restores_identical_outputs(hub, make_model, episodes):
    model = make_model(finetune="lora", num_layers=1)
    model.codec.set_normalization(state_mean=torch.full((10,), 0.05), state_std=torch.full((10,), 0.25))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01 * torch.randn_like(parameter))
    model.eval()
    first = push_grounded(model, "tester/kalm-clevr-grounded-tiny", env="clevr")
    second = push_grounded(model, "tester/kalm-clevr-grounded-tiny", env="clevr")
    assert (first.version, second.version) == ("v1.0", "v1.1")
    loaded = load_grounded("tester/kalm-clevr-grounded-tiny@v1.0")
    assert loaded.commit == first.commit
    examples = [
        model.prompts.encode(
            Task.GOAL_TO_ROLLOUT,
            goal=str(row["instruction"]),
            states=row["observations"],
            actions=row["actions"],
        )
        for row in episodes[:4]
    ]
    batch = model.collate(examples)
    torch.testing.assert_close(loaded.model(batch).loss, model(batch).loss)
