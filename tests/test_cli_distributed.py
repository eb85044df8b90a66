"""``kalm ground fit`` and ``kalm learn fit`` on 2 CPU processes under Lightning's own launcher (it re-runs
the command line, which kalm leaves intact): both train, rank 0 alone writes the checkpoint, the policy and
its provenance."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TWO = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]


def kalm(*argv: str, tmp_path: Path) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-m", "kalm", *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_ground_and_learn_fit_on_two_processes(tmp_path):
    real = tmp_path / "real"
    kalm("collect", "--episodes", "80", "--out", str(real), "--progress", "false", tmp_path=tmp_path)
    grounding = kalm(
        "ground",
        "fit",
        "--config",
        "configs/ground/clevr_tiny.yaml",
        "--data.dataset",
        str(real),
        "--trainer.default_root_dir",
        str(tmp_path / "ground"),
        *TWO,
        tmp_path=tmp_path,
    )
    assert "`Trainer.fit` stopped: `max_steps=20` reached." in grounding and "[rank: 1]" in grounding
    assert list((tmp_path / "ground").rglob("*.ckpt"))

    learning = kalm(
        "learn",
        "fit",
        "--config",
        "configs/learn/clevr_bc.yaml",
        "--data.real",
        str(real),
        "--trainer.max_steps",
        "40",
        "--trainer.default_root_dir",
        str(tmp_path / "learn"),
        "--trainer.logger.init_args.save_dir",
        str(tmp_path / "learn"),
        "--trainer.callbacks.init_args.every_n_steps",
        "20",
        *TWO,
        tmp_path=tmp_path,
    )
    assert "`Trainer.fit` stopped: `max_steps=40` reached." in learning
    assert learning.count("train: ") == 2  # the in-training evaluation: rank 0 alone, at steps 20 and 40
    assert learning.count("policy -> ") == 1
    [provenance] = (tmp_path / "learn").rglob("provenance.json")
    assert (provenance.parent / "policy" / "policy.json").is_file()
