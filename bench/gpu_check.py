"""The GPU path: ``kalm run --config configs/run/gpu.yaml`` on one GPU, then its stage timings and success
table.

    python bench/gpu_check.py [--budget-s 480] [-- extra kalm run options]
    python bench/gpu_check.py --dry-run          # on a CPU, tiny sizes (tiny random Llama, a few steps)

Runs the whole pipeline in this process (the GPU preset: all 30 SmolLM2 layers fully fine-tuned, bf16-mixed),
then prints the seconds of every stage against the budget (the preset is sized for ~8 minutes on one H200),
the success table of the report (baseline, KALM, the LLM as policy and the suite's floors, 95 % intervals),
and per level whether the baseline and KALM policies beat the best floor. The dry run keeps the preset's
stages, precision and wiring and shrinks only the sizes, so a CPU machine checks that the script and the
preset work end to end (a test runs it); its timings and rates mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DRY_RUN = [
    "--trainer.accelerator",
    "cpu",
    "--ground.model.backbone",
    "tiny-llama",
    "--ground.model.lr",
    "3.0e-3",
    "--collect.episodes",
    "60",
    "--ground.trainer.max_steps",
    "6",
    "--ground.data.batch_size",
    "8",
    "--ground.trainer.val_check_interval",
    "6",
    "--ground.model.explain_episodes",
    "2",
    "--ground.model.match_goals",
    "2",
    "--ground.stall_check",  # six steps leave the tiny random model's action head at chance, by design
    "false",
    "--imagine.per_goal",
    "1",
    "--imagine.batch_size",
    "64",
    "--imagine.horizon",
    "6",
    "--learn.num_seeds",
    "1",
    "--learn.trainer.max_steps",
    "16",
    "--learn.data.batch_size",
    "32",
    "--learn.data.imaginary_successful_only",
    "false",
    "--evaluate.episodes",
    "2",
    "--evaluate.llm_policy_episodes",
    "2",
    "--evaluate.gifs",
    "0",
]
STAGES = ("real_data", "grounding", "imagination", "learn_baseline", "learn_kalm", "evaluate")
POLICIES = ("baseline", "kalm")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default=str(ROOT / "configs/run/gpu.yaml"))
    parser.add_argument("--out", default="runs")
    parser.add_argument("--name", default=None, help="run name (default: gpu, or gpu-dry-run)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="the preset's time budget")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: check the script and preset")
    args, extra = parser.parse_known_args(argv)
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device here; run with --dry-run to check the script on a CPU", file=sys.stderr
        )
        return 2
    name = args.name or ("gpu-dry-run" if args.dry_run else "gpu")
    options = [
        "--config",
        args.config,
        "--out",
        args.out,
        "--name",
        name,
        *(DRY_RUN if args.dry_run else []),
        *[item for item in extra if item != "--"],
    ]
    from kalm.cli import main as kalm

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        print(f"device: {torch.cuda.get_device_name()}")
    start = time.perf_counter()
    status = kalm(["run", *options])
    wall = time.perf_counter() - start
    if status:
        return status
    folder = Path(args.out) / name
    stages = json.loads((folder / "stages.json").read_text())
    print(timing_table(stages, wall, args.budget_s))
    if torch.cuda.is_available():
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    from kalm.pipeline.report import success_table

    evaluation = json.loads((folder / "report.json").read_text())["evaluation"]  # levels in the run's order
    print("\nsuccess rate per level (95 % intervals)\n")
    print(success_table({"report": evaluation}))
    print("\nabove the best floor\n")
    print(floor_table(evaluation["results"]))
    return 0


def timing_table(stages: dict, wall: float, budget: float) -> str:
    """Seconds per stage (as recorded in ``stages.json``), the whole run's wall time and the budget."""
    lines = ["| stage | seconds |", "|---|---:|"]
    lines += [f"| {stage} | {stages[stage]['seconds']:.1f} |" for stage in STAGES if stage in stages]
    verdict = "within" if wall <= budget else "OVER"
    lines.append(f"| **whole run (wall)** | **{wall:.1f}** ({verdict} the {budget:.0f} s budget) |")
    return "\n".join(lines)


def floor_table(results: dict) -> str:
    """Per level: the best floor's rate and each policy's, marked where the policy beats that floor."""
    floors = {name: levels for name, levels in results.items() if name.startswith("floor:")}
    levels = list(results["baseline"])
    lines = ["| level | best floor | " + " | ".join(POLICIES) + " |", "|---|---:|" + "---:|" * len(POLICIES)]
    for level in levels:
        best = max((levels_[level]["rate"] for levels_ in floors.values() if level in levels_), default=0.0)
        cells = [
            f"{results[p][level]['rate']:.3f} {'above' if results[p][level]['rate'] > best else 'NOT above'}"
            for p in POLICIES
        ]
        lines.append(f"| {level} | {best:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
