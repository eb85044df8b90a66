"""Every stage of KALM on BabyAI through the ``kalm`` CLI, each from its config in ``configs/``.

The configs' sizes are overridden down to seconds (a tiny random Llama, a handful of steps and episodes);
the stages hand their artefacts to each other through the session's hub server, as ``kalm run`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from kalm.cli import main

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs"
ORG = "babyaistages"


@pytest.fixture
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def goal_cache(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The goal-embedding cache of this checkout's test runs (shared with tests/rl)."""
    cache = request.config.cache.mkdir("kalm-cache")
    monkeypatch.setenv("KALM_CACHE", str(cache))
    return str(cache / "goal_embeddings")


def test_every_stage_runs_from_its_babyai_config(hub, tmp_path, goal_cache, one_torch_thread, capsys):
    from kalm.grounding.hub import load_grounded
    from kalm.hub.datasets import pull_dataset
    from kalm.commands.evaluate import evaluate_main
    from kalm.commands.learn import train_policy

    real = tmp_path / "real"
    assert (
        main(
            [
                "collect",
                "--config",
                str(CONFIGS / "collect/babyai.yaml"),
                "--episodes",
                "24",
                "--out",
                str(real),
                "--progress",
                "false",
            ]
        )
        == 0
    )

    grounded = f"{ORG}/kalm-babyai-grounded-tiny"
    publish = [{"class_path": "kalm.grounding.hub.PublishGroundedModel", "init_args": {"repo_id": grounded}}]
    assert (
        main(
            [
                "ground",
                "fit",
                "--config",
                str(CONFIGS / "ground/babyai.yaml"),
                "--data.dataset",
                str(real),
                "--model.backbone",
                "tiny-llama",
                "--model.num_layers",
                "null",
                "--model.finetune",
                "full",
                "--model.explain_episodes",
                "2",
                "--model.match_goals",
                "2",
                "--model.match_levels",
                "[hard]",
                "--model.match_horizon",
                "3",
                "--data.batch_size",
                "4",
                "--trainer.max_steps",
                "2",
                "--trainer.val_check_interval",
                "2",
                "--trainer.limit_val_batches",
                "1",
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.default_root_dir",
                str(tmp_path / "ground"),
                "--trainer.callbacks",
                json.dumps(publish),
            ]
        )
        == 0
    )
    loaded = load_grounded(grounded)
    assert (loaded.model.config.obs_dim, loaded.model.config.action_dim, loaded.model.config.discrete) == (
        35,
        7,
        True,
    )
    assert {"val/state_mse", "val/match_rate/hard", "val/action_agreement/hard/same_kind"} <= set(
        loaded.provenance["metrics"]
    )

    assert (
        main(
            [
                "imagine",
                "--config",
                str(CONFIGS / "imagine/babyai.yaml"),
                "--model",
                grounded,
                "--org",
                ORG,
                "--levels",
                "[easy]",
                "--per_goal",
                "1",
                "--horizon",
                "4",
                "--work_dir",
                str(tmp_path / "imagine"),
                "--progress",
                "false",
            ]
        )
        == 0
    )
    imaginary_repo = f"{ORG}/kalm-babyai-imaginary-tiny"
    imaginary = pull_dataset(imaginary_repo)
    assert set(imaginary.dataset["source"]) == {"imaginary"} and set(imaginary.dataset["level"]) == {"easy"}
    assert "| easy | 28 |" in capsys.readouterr().out  # one rollout per easy goal went through the filter

    policy = train_policy(
        CONFIGS / "learn/babyai_bc.yaml",
        "--data.real.repo_or_path",
        str(real),
        "--data.imaginary",
        json.dumps([{"repo_or_path": imaginary_repo}]) if len(imaginary.dataset) else "[]",
        "--data.embedding_cache",
        goal_cache,
        "--data.batch_size",
        "32",
        "--data.steps_per_epoch",
        "2",
        "--data.batches_per_step",
        "2",
        "--trainer.max_steps",
        "4",
        "--trainer.default_root_dir",
        str(tmp_path / "learn"),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "learn"),
        "--trainer.enable_progress_bar",
        "false",
        "--model.hidden",
        "[32, 32]",
        "--trainer.callbacks",
        "[]",
    )

    out = tmp_path / "evaluate"
    assert (
        evaluate_main(
            [
                "--config",
                str(CONFIGS / "evaluate/babyai.yaml"),
                "--policies",
                f"[{policy}]",
                "--names",
                "[tiny]",
                "--levels",
                "[hard]",
                "--episodes",
                "4",
                "--out",
                str(out),
                "--progress",
                "false",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["env"] == "babyai" and report["results"]["tiny"]["hard"]["episodes"] == 4


def test_babyai_presets_name_the_model_their_ground_preset_publishes():
    imagine = yaml.safe_load((CONFIGS / "imagine/babyai.yaml").read_text())
    ground = yaml.safe_load((CONFIGS / "ground/babyai.yaml").read_text())
    assert imagine["env"] == ground["model"]["env"] == "babyai"
    assert imagine["model"] == ground["push_to"]
