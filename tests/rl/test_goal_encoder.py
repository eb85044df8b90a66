"""The causal-LM goal encoder (``BACKBONE:layerK``): masked mean of a truncated LM's residual stream."""

from __future__ import annotations

import numpy as np
import pytest

from kalm.errors import ConfigError
from kalm.rl.goal_encoder import GoalEncoder

SENTENCES = ["Push the red ball to the left of the blue ball", "Move it", "Could you nudge the green sphere?"]


def test_a_sentence_embeds_the_same_alone_or_padded_in_a_batch():
    encoder = GoalEncoder("tiny-llama:layer1", cache_dir=False)
    together = encoder.encode(SENTENCES)
    alone = np.concatenate([GoalEncoder("tiny-llama:layer1", cache_dir=False).encode([s]) for s in SENTENCES])
    assert together.shape == (3, 64) and together.dtype == np.float32
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert not np.allclose(together[0], together[1])


def test_the_layer_is_the_depth_read():
    first = GoalEncoder("tiny-llama:layer1", cache_dir=False).encode(SENTENCES)
    second = GoalEncoder("tiny-llama:layer2", cache_dir=False).encode(SENTENCES)
    assert not np.allclose(first, second)


@pytest.mark.parametrize("layer", [0, 3])
def test_a_layer_the_backbone_does_not_have_is_a_config_error(layer):
    with pytest.raises(ConfigError, match=f"goal encoder tiny-llama:layer{layer}: .*layer"):
        GoalEncoder(f"tiny-llama:layer{layer}", cache_dir=False).encode(SENTENCES)


def test_the_disk_cache_is_per_encoder_id(tmp_path):
    first = GoalEncoder("tiny-llama:layer1", cache_dir=tmp_path).encode(SENTENCES)
    again = GoalEncoder("tiny-llama:layer1", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.encode(SENTENCES), first)
    assert again._loaded.model is None  # served from the cache, no model loaded
    other = GoalEncoder("tiny-llama:layer2", cache_dir=tmp_path)
    assert not np.allclose(other.encode(SENTENCES), first)


def test_a_policy_acts_with_the_standardization_it_was_trained_with(tmp_path):
    from kalm.rl.goal_encoder import GoalStandardization
    from kalm.rl.networks import Policy, PolicySpec
    from kalm.rl.policy import load_policy, save_policy

    encoder = GoalEncoder("tiny-llama:layer1", cache_dir=tmp_path / "cache")
    standardization = GoalStandardization.fit(encoder.encode(SENTENCES))
    policy = Policy(PolicySpec(obs_dim=2, goal_dim=64, action_dim=4, discrete=True, head="argmax"))
    save_policy(
        policy,
        tmp_path / "p",
        goal_encoder=encoder.model_id,
        algorithm="bc",
        env="toy",
        goal_standardization=standardization,
    )
    loaded = load_policy(tmp_path / "p")
    np.testing.assert_allclose(
        loaded.encoder(encoder).encode(SENTENCES), standardization.apply(encoder.encode(SENTENCES)), atol=1e-6
    )
    assert encoder.standardization is None  # the shared encoder itself is left raw
    save_policy(policy, tmp_path / "raw", goal_encoder=encoder.model_id, algorithm="bc", env="toy")
    assert load_policy(tmp_path / "raw").goal_standardization is None  # older policies: raw embeddings
    with pytest.raises(ConfigError, match="trained with goal encoder 'tiny-llama:layer1'"):
        loaded.encoder(GoalEncoder("tiny-llama:layer2", cache_dir=False))


def test_a_standardized_copy_shares_the_embeddings_and_the_model():
    from kalm.rl.goal_encoder import GoalStandardization

    encoder = GoalEncoder("tiny-llama:layer1", cache_dir=False)
    raw = encoder.encode(SENTENCES)
    copy = encoder.standardized(GoalStandardization.fit(raw))
    np.testing.assert_allclose(copy.encode(SENTENCES), copy.standardization.apply(raw), atol=1e-6)
    copy.encode(["a sentence only the copy has seen"])
    assert "a sentence only the copy has seen" in encoder._loaded.memory
    assert copy._loaded.model is encoder._loaded.model is not None  # loaded once, for both
