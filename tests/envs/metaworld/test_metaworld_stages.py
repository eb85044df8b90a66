"""Every stage of KALM on Meta-World through the ``kalm`` CLI, each from its config in ``configs/``.

The configs' sizes are overridden down to seconds (a tiny random Llama, a handful of steps and episodes);
the stages hand their artefacts to each other through the session's hub server, as ``kalm run`` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kalm.cli import main

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "configs"
ORG = "mwstages"


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


def test_every_stage_runs_from_its_metaworld_config(hub, tmp_path, goal_cache, one_torch_thread, capsys):
    from kalm.data import read_rollouts
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
                str(CONFIGS / "collect/metaworld.yaml"),
                "--episodes",
                "12",
                "--out",
                str(real),
                "--progress",
                "false",
            ]
        )
        == 0
    )

    grounded = f"{ORG}/kalm-metaworld-grounded-tiny"
    publish = [{"class_path": "kalm.grounding.hub.PublishGroundedModel", "init_args": {"repo_id": grounded}}]
    assert (
        main(
            [
                "ground",
                "fit",
                "--config",
                str(CONFIGS / "ground/metaworld.yaml"),
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
                "1",
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
    assert (loaded.model.config.obs_dim, loaded.model.config.action_dim) == (91, 4)
    assert not loaded.model.config.discrete and loaded.model.config.residual_states
    assert {"val/state_mse", "val/match_rate/hard"} <= set(loaded.provenance["metrics"])

    assert (
        main(
            [
                "imagine",
                "--config",
                str(CONFIGS / "imagine/metaworld.yaml"),
                "--model",
                grounded,
                "--org",
                ORG,
                "--levels",
                "[hard]",
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
    imaginary_repo = f"{ORG}/kalm-metaworld-imaginary-tiny"
    imaginary = pull_dataset(imaginary_repo)
    assert sorted(imaginary.dataset["goal_id"]) == ["hammer", "locked-door-open", "make-coffee", "soccer"]
    assert set(imaginary.dataset["source"]) == {"imaginary"}
    assert "| hard | 4 | 4 (100.0%) |" in capsys.readouterr().out  # an untrained residual head copies states

    policy = train_policy(
        CONFIGS / "learn/metaworld_td3bc.yaml",
        "--data.real.repo_or_path",
        str(real),
        "--data.imaginary",
        json.dumps([{"repo_or_path": imaginary_repo}]),
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
    inputs = json.loads((policy.parent / "provenance.json").read_text())["inputs"]
    assert [item["repo_or_path"] for item in inputs] == [str(real), imaginary_repo]

    out = tmp_path / "evaluate"
    assert (
        evaluate_main(
            [
                "--config",
                str(CONFIGS / "evaluate/metaworld.yaml"),
                "--policies",
                f"[{policy}]",
                "--names",
                "[tiny]",
                "--levels",
                "[hard]",
                "--episodes",
                "2",
                "--out",
                str(out),
                "--progress",
                "false",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["env"] == "metaworld" and report["results"]["tiny"]["hard"]["episodes"] == 2
    assert len(read_rollouts(real)) == 12


def test_imagine_configs_match_the_cli_and_the_grounding_configs():
    """The imagine presets name exactly ``kalm imagine``'s options and the model their ground preset
    publishes."""
    import yaml

    from kalm.commands.imagine import parser

    options = {action.dest.split(".")[0] for action in parser()._actions} - {
        "help",
        "config",
        "print_config",
        "trainer",
    }
    for env in ("clevr", "metaworld"):
        preset = yaml.safe_load((CONFIGS / f"imagine/{env}.yaml").read_text())
        ground = yaml.safe_load((CONFIGS / f"ground/{env}.yaml").read_text())
        assert set(preset) == options and preset["env"] == env
        assert preset["model"] == ground["push_to"]
