"""Grounding from a grounded model (``init_from``): what carries over, what is new, what is recorded, what is
refused."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
import torch
import yaml
from huggingface_hub import hf_hub_download

from kalm.errors import ConfigError
from kalm.grounding.hub import push_grounded
from kalm.grounding.model import GroundingConfig
from kalm.grounding.parent import init_from_parent
from kalm.grounding.prompts import Task

CLEVR = {"obs_dim": 10, "action_dim": 40, "discrete": True}
METAWORLD = {"obs_dim": 91, "action_dim": 4, "discrete": False}


def configured(**overrides) -> GroundingConfig:
    """What a user configures for the child: the defaults of GroundingModule, on the tiny backbone."""
    return GroundingConfig(**{"backbone": "tiny-llama", **CLEVR, "codec_hidden": 64, **overrides})


@pytest.fixture
def parent(make_model):
    """A trained-looking grounded model: LoRA on 1 layer, perturbed adapters and codec, distinct
    statistics."""
    model = make_model(finetune="lora", num_layers=1, lora_rank=4, codec_hidden=32)
    model.codec.set_normalization(state_mean=torch.full((10,), 0.05), state_std=torch.full((10,), 0.25))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01 * torch.randn_like(parameter))
    return model.eval()


def batch_of(model, episodes):
    examples = [
        model.prompts.encode(
            Task.GOAL_TO_ROLLOUT,
            goal=str(row["instruction"]),
            states=row["observations"],
            actions=row["actions"],
        )
        for row in episodes[:4]
    ]
    return model.collate(examples)


def test_same_rollout_shapes_keep_adapters_codec_and_statistics(parent, tmp_path, episodes, caplog):
    folder = parent.save_pretrained(tmp_path / "parent")
    with caplog.at_level(logging.INFO, logger="kalm.grounding.parent"):
        child = init_from_parent(str(folder), configured(state_loss_weight=2.0))
    assert child.codec_kept
    model = child.model
    assert model.training
    config = model.config
    # the parent's weights fix their settings; loss weights are the configuration's
    assert (config.num_layers, config.finetune, config.lora_rank, config.codec_hidden) == (1, "lora", 4, 32)
    assert config.state_loss_weight == 2.0
    assert config.lineage == [{"repo_id": str(folder), "revision": None, "commit": "local"}]
    for name, value in parent.codec.state_dict().items():
        torch.testing.assert_close(model.codec.state_dict()[name], value, msg=name)
    assert float(model.codec.state_std[0]) == pytest.approx(0.25)
    trainable = {name for name, p in model.backbone.named_parameters() if p.requires_grad}
    assert trainable and all(
        "lora_" in name for name in trainable
    )  # the adapters train on, the base stays frozen
    batch = batch_of(parent, episodes)
    model.eval()
    torch.testing.assert_close(model(batch).text_loss, parent(batch).text_loss)
    torch.testing.assert_close(model(batch).action_loss, parent(batch).action_loss)
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        "the parent's weights fix num_layers=1 (configured None), lora_rank=4 (configured 16)" in message
        for message in messages
    ), messages


def test_other_rollout_shapes_get_a_new_codec_and_one_log_line(make_model, tmp_path, caplog):
    parent = make_model(finetune="full", codec_hidden=32)
    with torch.no_grad():
        parent.backbone.get_input_embeddings().weight.mul_(1.5)  # "fine-tuned" full weights
    folder = parent.save_pretrained(tmp_path / "parent")
    with caplog.at_level(logging.INFO, logger="kalm.grounding.parent"):
        child = init_from_parent(str(folder), configured(**METAWORLD, finetune="lora", codec_hidden=48))
    assert not child.codec_kept
    model = child.model
    assert (model.config.finetune, model.config.codec_hidden, model.config.obs_dim) == ("full", 48, 91)
    assert (model.codec.obs_dim, model.codec.action_dim, model.codec.discrete) == (91, 4, False)
    assert model.codec.state_embed[0].out_features == 48
    assert not model.codec.state_head.weight.any()  # a fresh residual head
    for name, value in parent.backbone.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[name], value, msg=name)
    new_codec = [r.getMessage() for r in caplog.records if "new codec" in r.getMessage()]
    assert new_codec == [
        f"init_from {folder}: new codec: the parent reads obs_dim=10, action_dim=40 (discrete), "
        "this environment has obs_dim=91, action_dim=4 (continuous)"
    ]


def test_a_hub_parent_is_named_in_the_card_and_provenance_back_to_the_backbone(hub, parent):
    first = push_grounded(parent, "lineage/kalm-clevr-grounded-tiny", env="clevr")
    child = init_from_parent("lineage/kalm-clevr-grounded-tiny@v1.0", configured()).model
    pushed = push_grounded(child, "lineage/kalm-clevr-grounded-tiny-from-clevr", env="clevr")
    grandchild = init_from_parent(
        "lineage/kalm-clevr-grounded-tiny-from-clevr", configured(**METAWORLD)
    ).model
    last = push_grounded(grandchild, "lineage/kalm-metaworld-grounded-tiny-from-clevr", env="metaworld")

    def published(repo_id, commit):
        card = Path(hf_hub_download(repo_id, "README.md", revision=commit)).read_text()
        provenance = json.loads(
            Path(hf_hub_download(repo_id, "kalm_provenance.json", revision=commit)).read_text()
        )
        return yaml.safe_load(card.split("---")[1]), card, provenance

    front, card, provenance = published(pushed.repo_id, pushed.commit)
    assert front["base_model"] == "lineage/kalm-clevr-grounded-tiny"
    parent_entry = {"repo_id": "lineage/kalm-clevr-grounded-tiny", "revision": "v1.0", "commit": first.commit}
    assert provenance["parent_model"] == parent_entry
    assert provenance["backbone"] == {"name": "tiny-llama", "revision": None, "num_layers": 1}
    assert f"- initialised from: `lineage/kalm-clevr-grounded-tiny` at `{first.commit}`" in card

    front, card, provenance = published(last.repo_id, last.commit)
    assert front["base_model"] == "lineage/kalm-clevr-grounded-tiny-from-clevr"
    child_entry = {"repo_id": pushed.repo_id, "revision": "v1.0", "commit": pushed.commit}
    assert provenance["lineage"] == [child_entry, parent_entry]  # nearest first, back to the backbone
    assert f"- which was initialised from: `lineage/kalm-clevr-grounded-tiny` at `{first.commit}`" in card
    assert "- backbone: `tiny-llama` at `default`, first 1 layers" in card

    from_scratch = published(first.repo_id, first.commit)
    assert from_scratch[0]["base_model"] == "tiny-llama" and "parent_model" not in from_scratch[2]


def test_a_parent_grounded_from_another_backbone_is_refused_in_one_line(parent, tmp_path):
    folder = parent.save_pretrained(tmp_path / "parent")
    with pytest.raises(ConfigError) as error:
        init_from_parent(str(folder), configured(backbone="smollm2-135m"))
    assert str(error.value) == (
        f"init_from {str(folder)!r}: the parent was grounded from backbone='tiny-llama', "
        "revision=None; the configuration expects backbone='smollm2-135m', revision=None (set "
        "the backbone to the parent's, or start from another model)"
    )


def test_what_is_not_a_grounded_model_is_refused_naming_what_it_is(hub, tmp_path, make_model):
    from kalm.hub.models import publish_model

    plain = tmp_path / "plain"
    make_model(finetune="full").backbone.save_pretrained(plain)  # a transformers model, no kalm files
    with pytest.raises(ConfigError) as error:
        init_from_parent(str(plain), configured())
    assert str(error.value) == (
        f"{plain} is a plain transformers model (config.json, generation_config.json, "
        "model.safetensors); expected a kalm grounded model, which has kalm_grounding.json "
        "(written by kalm ground / GroundedLM.save_pretrained)"
    )
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "policy.json").write_text("{}")
    publish_model(policy, "lineage/kalm-clevr-bc", env="clevr")
    with pytest.raises(
        ConfigError,
        match=r"^lineage/kalm-clevr-bc@v1.0 \(\w{12}\) is a kalm policy \(.*policy.json.*\); "
        r"expected a kalm grounded model, which has kalm_grounding.json",
    ):
        init_from_parent("lineage/kalm-clevr-bc", configured())
    with pytest.raises(ConfigError, match=r"^grounded model '\./missing': no such folder"):
        init_from_parent("./missing", configured())


def test_a_child_saved_and_loaded_keeps_its_lineage(parent, tmp_path):
    from kalm.grounding.model import GroundedLM

    child = init_from_parent(str(parent.save_pretrained(tmp_path / "parent")), configured()).model
    loaded = GroundedLM.from_pretrained(child.save_pretrained(tmp_path / "child"))
    assert loaded.config == child.config
    assert dataclasses.asdict(loaded.config)["lineage"][0]["commit"] == "local"


CONFIG = Path(__file__).resolve().parents[2] / "configs/ground/clevr_tiny.yaml"


def ground_fit(data, root, *extra) -> int:
    from kalm.cli import main

    return main(
        [
            "ground",
            "fit",
            "--config",
            str(CONFIG),
            "--data.dataset",
            str(data),
            "--trainer.max_steps",
            "2",
            "--trainer.val_check_interval",
            "2",
            "--trainer.limit_val_batches",
            "1",
            "--model.metrics_every",
            "0",
            "--trainer.default_root_dir",
            str(root),
            "--trainer.enable_progress_bar",
            "false",
            "--trainer.logger",
            "false",
            "--trainer.enable_checkpointing",
            "false",
            *extra,
        ]
    )


def test_kalm_ground_fit_continues_a_hub_model_and_publishes_the_child(hub, parent, clevr_real, tmp_path):
    from kalm.grounding.hub import load_grounded

    first = push_grounded(parent, "fit/kalm-clevr-grounded-tiny", env="clevr")
    assert (
        ground_fit(
            clevr_real,
            tmp_path,
            "--model.init_from",
            "fit/kalm-clevr-grounded-tiny@v1.0",
            "--push_to",  # kalm learn fit's publishing flags
            "fit/kalm-clevr-grounded-tiny-from-clevr",
            "--push_version",
            "v2.1",
        )
        == 0
    )
    child = load_grounded("fit/kalm-clevr-grounded-tiny-from-clevr@v2.1")
    config = child.model.config
    assert config.finetune == "lora" and config.num_layers == 1  # the parent's, though the preset says full
    assert config.lineage == [
        {"repo_id": "fit/kalm-clevr-grounded-tiny", "revision": "v1.0", "commit": first.commit}
    ]
    assert float(child.model.codec.state_mean[0]) == pytest.approx(0.05)  # the kept codec kept its statistics
    adapters = {name: p for name, p in parent.backbone.named_parameters() if "lora_" in name}
    trained = dict(child.model.backbone.named_parameters())
    assert any(
        not torch.equal(trained[name], value) for name, value in adapters.items()
    )  # trained on from there
    assert child.provenance["parent_model"]["commit"] == first.commit


def test_kalm_ground_fit_refuses_a_bad_parent_in_one_line(tmp_path, clevr_real, capsys):
    (tmp_path / "empty").mkdir()
    assert ground_fit(clevr_real, tmp_path, "--model.init_from", str(tmp_path / "empty")) == 2
    err = capsys.readouterr().err
    assert err == (
        f"kalm: error: {tmp_path / 'empty'} is not a kalm grounded model (no files); expected a kalm "
        "grounded model, which has kalm_grounding.json "
        "(written by kalm ground / GroundedLM.save_pretrained)\n"
    )
