"""The packaged Gemma 3 270M backbone (``gemma3-270m``, the ``kalm[gemma]`` extra): the ``gemma`` tier, which
CI runs with ``pytest -m gemma``. Without the extra these tests fail with the install command, they never
skip.

The first test converts the GGUF into the cache once (about two minutes on 2 cores); later loads take
seconds."""

import json

import numpy as np
import pytest
import torch

from kalm.backbones import GEMMA3, load_backbone, load_tokenizer
from kalm.grounding.hub import load_grounded, push_grounded
from kalm.grounding.model import GroundedLM, GroundingConfig, token_embedding_rms
from kalm.grounding.prompts import PromptEncoder, Task

pytestmark = pytest.mark.gemma


@pytest.fixture(scope="module")
def gemma_tokenizer():
    return load_tokenizer(GEMMA3)


def grounded(tokenizer, **overrides):
    torch.manual_seed(0)
    config = GroundingConfig(
        **{
            "backbone": GEMMA3,
            "num_layers": 2,
            "obs_dim": 10,
            "action_dim": 40,
            "discrete": True,
            "lora_rank": 8,
            **overrides,
        }
    )
    model = GroundedLM(config, tokenizer=tokenizer)
    model.codec.set_normalization(state_mean=torch.full((10,), 0.1), state_std=torch.full((10,), 0.3))
    return model


def batch_of(model, episodes, task=Task.GOAL_TO_ROLLOUT, count=8):
    return model.collate(
        [
            model.prompts.encode(
                task, goal=str(row["instruction"]), states=row["observations"], actions=row["actions"]
            )
            for row in episodes[:count]
        ]
    )


@pytest.mark.timeout(
    900
)  # on a fresh cache its setup and call convert the GGUF (about 2 minutes on 2 idle cores)
def test_the_package_loads_as_gemma3_with_its_real_weights(gemma_tokenizer):
    from transformers import Gemma3ForCausalLM

    full = load_backbone(GEMMA3)
    config = full.config
    assert isinstance(full, Gemma3ForCausalLM)
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (640, 18, 262144)
    assert config.layer_types.count("full_attention") == 3 and config.sliding_window == 512
    assert full.get_output_embeddings().weight is full.get_input_embeddings().weight  # tied LM head
    assert float(full.get_input_embeddings().embed_scale) == pytest.approx(640**0.5)
    assert not hasattr(config, "quantization_config")  # de-quantised once, loaded as plain fp32
    assert PromptEncoder(gemma_tokenizer).bos == [gemma_tokenizer.bos_token_id] == [2]  # Gemma needs its BOS
    # de-quantised correctly (norm offsets included): plain English is far likelier than under random weights
    ids = gemma_tokenizer(
        "The capital of France is Paris. The capital of Germany is Berlin.", return_tensors="pt"
    )
    with torch.no_grad():
        loss = full(**ids, labels=ids["input_ids"]).loss
    assert loss < 3.5  # a random model's is ~ln(262144) = 12.5
    short = load_backbone(GEMMA3, num_layers=3)
    assert len(short.model.layers) == 3 and short.config.layer_types == ["sliding_attention"] * 3
    torch.testing.assert_close(
        short.model.layers[2].mlp.up_proj.weight, full.model.layers[2].mlp.up_proj.weight
    )


def test_a_few_grounding_steps_lower_the_loss(gemma_tokenizer, episodes):
    model = grounded(gemma_tokenizer).train()
    assert model.codec.embed_scale * 640**0.5 == pytest.approx(token_embedding_rms(model.backbone), rel=1e-5)
    batch = model.collate(
        [
            model.prompts.encode(
                Task(i % 4), goal=str(row["instruction"]), states=row["observations"], actions=row["actions"]
            )
            for i, row in enumerate(episodes[:8])
        ]
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(5):
        output = model(batch)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(output.loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_generate_and_explain_decode_the_same_with_and_without_the_cache(gemma_tokenizer, episodes):
    model = grounded(gemma_tokenizer).eval()
    torch.nn.init.normal_(model.codec.state_head.weight, std=0.05)  # imagined states move, and feed back
    rows = episodes[:4]
    goals = [str(row["instruction"]) for row in rows]
    initial = np.stack([row["observations"][0] for row in rows])
    cached = model.generate_rollouts(goals, initial, horizon=6)
    uncached = model.generate_rollouts(goals, initial, horizon=6, use_cache=False)
    np.testing.assert_array_equal(cached.actions, uncached.actions)
    np.testing.assert_allclose(cached.observations, uncached.observations, atol=1e-4)
    texts = model.explain(
        [cached.rollout(i)[0] for i in range(4)], [cached.rollout(i)[1] for i in range(4)], max_new_tokens=6
    )
    assert len(texts) == 4 and all(isinstance(text, str) and text for text in texts)
    assert texts == model.explain(
        [cached.rollout(i)[0] for i in range(4)],
        [cached.rollout(i)[1] for i in range(4)],
        max_new_tokens=6,
        use_cache=False,
    )


def test_publish_then_load_restores_the_model_under_the_gemma_terms(hub, gemma_tokenizer, episodes):
    from huggingface_hub import hf_hub_download

    model = grounded(gemma_tokenizer)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01 * torch.randn_like(parameter))
    model.eval()
    published = push_grounded(model, "tester/kalm-clevr-grounded-gemma3-270m-2l", env="clevr")
    loaded = load_grounded(f"tester/kalm-clevr-grounded-gemma3-270m-2l@{published.version}")
    assert loaded.model.config == model.config
    batch = batch_of(model, episodes, count=4)
    torch.testing.assert_close(loaded.model(batch).loss, model(batch).loss)
    card = open(
        hf_hub_download("tester/kalm-clevr-grounded-gemma3-270m-2l", "README.md", revision=published.version)
    ).read()
    assert "license: gemma" in card
    notice = open(
        hf_hub_download("tester/kalm-clevr-grounded-gemma3-270m-2l", "NOTICE", revision=published.version)
    ).read()
    assert "Gemma Terms of Use" in notice
    hf_hub_download(
        "tester/kalm-clevr-grounded-gemma3-270m-2l", "GEMMA_TERMS.html", revision=published.version
    )
    provenance = json.loads(
        open(
            hf_hub_download(
                "tester/kalm-clevr-grounded-gemma3-270m-2l",
                "kalm_provenance.json",
                revision=published.version,
            )
        ).read()
    )
    assert provenance["backbone"] == {"name": GEMMA3, "revision": None, "num_layers": 2}


@pytest.mark.timeout(
    1500
)  # the whole pipeline: about 3 minutes on 2 idle cores, far more on a shared machine
def test_kalm_run_grounds_imagines_and_reports_with_gemma(hub, tmp_path):
    from pathlib import Path

    from kalm.cli import main

    preset = Path(__file__).resolve().parents[2] / "configs/run/quick.yaml"
    argv = [
        "run",
        "--config",
        str(preset),
        "--out",
        str(tmp_path),
        "--hub_endpoint",
        hub.url,
        "--org",
        "gemma",
        "--ground.model.backbone",
        GEMMA3,
        "--ground.model.num_layers",
        "1",
        "--ground.model.finetune",
        "lora",
        "--ground.trainer.max_steps",
        "4",
        "--ground.trainer.val_check_interval",
        "4",
        "--ground.model.explain_episodes",
        "2",
        "--ground.model.match_goals",
        "1",
        "--collect.episodes",
        "60",
        "--imagine.horizon",
        "4",
        "--learn.trainer.max_steps",
        "10",
        "--evaluate.episodes",
        "2",
        "--evaluate.llm_policy_episodes",
        "2",
        "--evaluate.gifs",
        "0",
    ]
    assert main(argv) == 0
    report = json.loads((tmp_path / "quick" / "report.json").read_text())
    assert report["grounding"]["repo_id"] == "gemma/kalm-clevr-grounded-gemma3-270m-1l"
    assert report["imaginary"]["repo_id"] == "gemma/kalm-clevr-imaginary-gemma3-270m-1l"
    assert "LLM as policy" in report["evaluation"]["results"]
    loaded = load_grounded(report["grounding"]["repo_id"])
    assert loaded.model.config.backbone == GEMMA3 and loaded.model.prompts.bos == [2]
