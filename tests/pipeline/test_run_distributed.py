"""``kalm run`` on 2 CPU processes (gloo), under Lightning's own launcher and under ``torchrun``.

Each run is a real subprocess tree against the session's hub server; afterwards the test checks what a
2-process run must leave: one version per repo (rank 0 alone publishes), a grounded model that loads with all
its weights, the imaginary dataset a single process imagines with that model, one report, and a record of
every stage. The default tier runs a tiny configuration under each launcher; ``-m slow`` runs the quick
preset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--config", str(ROOT / "configs/run/quick.yaml")]
TINY = [
    *QUICK,
    "--collect.episodes",
    "80",
    "--ground.trainer.max_steps",
    "8",
    "--ground.trainer.val_check_interval",
    "8",
    "--ground.model.explain_episodes",
    "2",
    "--ground.model.match_goals",
    "2",
    "--imagine.horizon",
    "6",
    "--learn.trainer.max_steps",
    "16",
    "--learn.data.batch_size",
    "32",
    "--evaluate.episodes",
    "2",
    "--evaluate.llm_policy_episodes",
    "2",
    "--evaluate.gifs",
    "0",
]
LAUNCHERS = {
    "lightning": [
        sys.executable,
        "-m",
        "kalm",
        "run",
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
    ],
    "torchrun": [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "kalm",
        "run",
        "--trainer.accelerator",
        "cpu",
    ],
}


def run_two_processes(launcher: str, options: list[str], hub, tmp_path: Path, org: str) -> tuple[Path, str]:
    """Run ``kalm run`` on 2 processes; returns the run folder and what the ranks printed."""
    argv = [
        *LAUNCHERS[launcher],
        *options,
        "--out",
        str(tmp_path / "runs"),
        "--hub_endpoint",
        hub.url,
        "--org",
        org,
        "--name",
        launcher,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(ROOT))
    for variable in ("HF_HUB_CACHE", "HF_DATASETS_CACHE", "LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT"):
        env.pop(variable, None)
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return tmp_path / "runs" / launcher, done.stdout


def check_run(folder: Path, printed: str, options: list[str], org: str, tmp_path: Path) -> None:
    from huggingface_hub import HfApi

    from kalm.envs import get_suite
    from kalm.grounding.hub import load_grounded
    from kalm.hub.datasets import pull_dataset
    from kalm.hub.models import pull_model
    from kalm.hub.versions import list_versions
    from kalm.imagine.stage import imagine
    from kalm.pipeline.cli import parse

    assert printed.count("\nreport: ") == 1  # rank 0 alone writes and prints the report
    report = json.loads((folder / "report.json").read_text())
    assert (folder / "report.md").read_text().count("## Success rate per level") == 1
    assert set(json.loads((folder / "stages.json").read_text())) == {
        "real_data",
        "grounding",
        "imagination",
        "learn_baseline",
        "learn_kalm",
        "evaluate",
    }
    assert (folder / "run.log").is_file() and (folder / "run.rank1.log").is_file()
    assert "grounding: running" in (folder / "run.rank1.log").read_text()  # rank 1 took part in every stage

    api = HfApi()
    repos = {"real": "dataset", "grounding": "model", "imaginary": "dataset"}
    for part, kind in repos.items():  # one version per repo, the one recorded
        assert report[part]["repo_id"].startswith(f"{org}/")
        assert list_versions(api, report[part]["repo_id"], kind) == [("v1.0", report[part]["commit"])]

    grounded = report["grounding"]
    files = {
        str(path.relative_to(pulled.path))
        for pulled in [pull_model(grounded["repo_id"], "v1.0")]
        for path in pulled.path.rglob("*")
        if path.is_file()
    }
    assert {
        "kalm_grounding.json",
        "codec.safetensors",
        "backbone/model.safetensors",
        "backbone/config.json",
    } <= files
    config = parse(options)
    assert grounded["steps"] == config.ground.trainer["max_steps"]

    loaded = load_grounded(
        grounded["repo_id"], grounded["commit"]
    )  # one process imagines with the same model
    alone = imagine(
        loaded.model.eval(),
        get_suite("clevr"),
        config.imagine,
        work_dir=tmp_path / "alone",
        seed=config.seed,
        progress=False,
    ).dataset.with_format("numpy")
    together = pull_dataset(report["imaginary"]["repo_id"], "v1.0").dataset.with_format("numpy")
    assert len(together) == len(alone) > 0
    for column in ("episode_id", "level", "goal_id", "instruction", "length", "success"):
        assert list(together[column]) == list(alone[column]), column
    for a, b in zip(together["actions"], alone["actions"], strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(together["observations"], alone["observations"], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    assert set(report["evaluation"]["results"]) >= {"baseline", "kalm"}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_tiny_run_on_two_processes(launcher, hub, tmp_path):
    org = f"ddp-tiny-{launcher}"
    folder, printed = run_two_processes(launcher, TINY, hub, tmp_path, org)
    check_run(folder, printed, TINY, org, tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_quick_run_on_two_processes(launcher, hub, tmp_path):
    org = f"ddp-quick-{launcher}"
    folder, printed = run_two_processes(launcher, QUICK, hub, tmp_path, org)
    check_run(folder, printed, QUICK, org, tmp_path)
