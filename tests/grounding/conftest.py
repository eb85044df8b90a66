from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def clevr_real(tmp_path_factory):
    """A small real CLEVR-Robot dataset folder (collected once per session)."""
    from kalm.collect import collect_rollouts
    from kalm.data import write_rollouts
    from kalm.envs import get_suite

    suite = get_suite("clevr")
    result = collect_rollouts(suite, episodes=120, seed=3, random_fraction=0.1, progress=False)
    return write_rollouts(
        result.dataset, tmp_path_factory.mktemp("data") / "clevr-real", env="clevr", spec=suite.spec
    )


@pytest.fixture(scope="session")
def episodes(clevr_real):
    from kalm.data import read_rollouts

    return list(read_rollouts(clevr_real).with_format("numpy"))


@pytest.fixture(scope="session")
def tokenizer():
    from kalm.backbones import load_tokenizer

    return load_tokenizer("tiny-llama")


@pytest.fixture
def make_model(tokenizer):
    from kalm.grounding.model import GroundedLM, GroundingConfig

    def make(**overrides):
        torch.manual_seed(0)
        config = GroundingConfig(
            **{"backbone": "tiny-llama", "obs_dim": 10, "action_dim": 40, "discrete": True, **overrides}
        )
        return GroundedLM(config, tokenizer=tokenizer)

    return make


@pytest.fixture
def rollout(episodes):
    """The longest of the real episodes (states, actions, goal sentence)."""
    row = max(episodes, key=lambda r: r["length"])
    return row["observations"], row["actions"], str(row["instruction"])


def assert_same_outputs(a, b, batch):
    out_a, out_b = a(batch), b(batch)
    np.testing.assert_allclose(out_a.loss.detach(), out_b.loss.detach(), rtol=1e-5)
