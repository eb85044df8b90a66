"""bench/gpu_check.py's CPU dry run: the GPU preset's stages on tiny sizes, then timings, success table,
floors."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_prints_timings_success_table_and_floors(hub, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HOME=str(tmp_path / "hf-home"), PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/gpu_check.py"),
            "--dry-run",
            "--out",
            str(tmp_path),
            "--",
            "--hub_endpoint",
            hub.url,
            "--org",
            "gpu-check",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.split("| stage | seconds |", 1)[1]
    for stage in ("real_data", "grounding", "imagination", "learn_baseline", "learn_kalm", "evaluate"):
        assert f"| {stage} | " in summary
    assert "| **whole run (wall)** |" in summary and "480 s budget" in summary
    table, floors = summary.split("above the best floor", 1)
    assert "| floor: uniform random |" in table and "| KALM − baseline |" in table
    rows = [line for line in floors.splitlines() if line.startswith("| ") and "best floor" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| train",
        "| rephrase",
        "| rephrase (unseen phrasings)",
        "| easy",
        "| hard",
    ]
    config = (tmp_path / "gpu-dry-run" / "config.yaml").read_text()
    assert "precision: bf16-mixed" in config and "num_layers: null" in config and "finetune: full" in config
