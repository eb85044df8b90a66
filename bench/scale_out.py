"""Scale-out on this machine: ``kalm run`` on 1 process against 2 (Lightning's launcher, gloo), stage by
stage.

    python bench/scale_out.py [--config configs/run/quick.yaml] [--threads 1] [-- extra kalm run options]

Runs the preset three ways in fresh run folders and hub stores, one after the other: 1 process with
``--threads`` threads per process (the baseline), 1 process with twice as many threads (what one process does
with the cores 2 processes use), and 2 processes with ``--threads`` each (``--trainer.devices 2
--trainer.strategy ddp``). Prints each stage's seconds (``stages.json``) and the speed-ups against the
baseline. Grounding and learning run the same number of steps with the same per-process batch, so 2
processes train on twice the examples: their *throughput* speed-up is ``2 x t(1) / t(2)``; imagination
splits the same batches (its speed-up is ``t(1) / t(2)``); collection, evaluation and the report run on
rank 0 alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("real_data", "grounding", "imagination", "learn_baseline", "learn_kalm", "evaluate")
WORK_SCALES = {"grounding": 2, "learn_baseline": 2, "learn_kalm": 2}
"""How much more work 2 processes do in a stage (same steps, a batch per process)."""


def run(
    config: str, processes: int, threads: int, root: Path, extra: list[str]
) -> tuple[dict[str, float], float]:
    name = f"p{processes}-t{threads}"
    command = [
        sys.executable,
        "-m",
        "kalm",
        "run",
        "--config",
        config,
        "--out",
        str(root / "runs"),
        "--name",
        name,
        *extra,
    ]
    if processes > 1:
        command += [
            "--trainer.accelerator",
            "cpu",
            "--trainer.devices",
            str(processes),
            "--trainer.strategy",
            "ddp",
        ]
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        KALM_HUB_ROOT=str(root / name / "hub"),
        HF_HOME=str(root / name / "hf-home"),
    )
    for variable in ("HF_ENDPOINT", "KALM_HUB_ENDPOINT", "LOCAL_RANK", "WORLD_SIZE"):
        env.pop(variable, None)
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    stages = json.loads((root / "runs" / name / "stages.json").read_text())
    return {stage: float(stages[stage]["seconds"]) for stage in STAGES}, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs/run/quick.yaml"))
    parser.add_argument(
        "--threads", type=int, default=1, help="threads per process of the baseline and of DDP"
    )
    args, extra = parser.parse_known_args()
    extra = [item for item in extra if item != "--"]
    with tempfile.TemporaryDirectory(prefix="kalm-scale-out-") as folder:
        root = Path(folder)
        runs = {
            "1 process": run(args.config, 1, args.threads, root, extra),
            f"1 process, {2 * args.threads} threads": run(args.config, 1, 2 * args.threads, root, extra),
            "2 processes": run(args.config, 2, args.threads, root, extra),
        }
    names = list(runs)
    print(
        f"kalm run --config {Path(args.config).name}, {args.threads} thread(s) per process, "
        f"{os.cpu_count()} cores\n"
    )
    print(
        "| stage | " + " | ".join(f"{name} (s)" for name in names) + " | 2 processes: time speed-up | "
        "2 processes: throughput speed-up |"
    )
    print("|---|" + "---:|" * (len(names) + 2))
    for stage in (*STAGES, "whole run (wall)"):
        seconds = [run_[1] if stage.startswith("whole") else run_[0][stage] for run_ in runs.values()]
        first, two = seconds[0], seconds[-1]
        scale = WORK_SCALES.get(stage, 1)
        cells = " | ".join(f"{value:.1f}" for value in seconds)
        print(f"| {stage} | {cells} | {first / two:.2f}x | {scale * first / two:.2f}x |")


if __name__ == "__main__":
    main()
