"""Which backbone grounds better per CPU minute: SmolLM2-135M (the default) vs Gemma 3 270M, same data and
seed.

    KALM_HUB_ROOT=/tmp/hub-s4 python bench/grounding_backbones.py \\
        --dataset kalm/kalm-clevr-real --revision v1.0 \\
        --budgets 5 10 --runs smollm2-135m:8 gemma3-270m:4

Each run (``BACKBONE:LAYERS``) is a worker process with one thread (``OMP_NUM_THREADS=1``), all side by side;
each grounds with the default preset's settings (``configs/run/default.yaml``: LoRA r32 / alpha 64 on every
projection, lr 1e-3, codec lr 3e-3, batch 16, the task mixture 3:1:1:1) through ``GroundingModule`` and
``RolloutGoalDataModule`` under Lightning, with the same seed (the same episodes, tasks and phrasings in the
same order). The clock is the worker's **process CPU time** (``time.process_time()``), not wall time, so that
other work on a shared machine does not count; the CPU spent evaluating is left out of the budget. The
module's learning-rate schedule (linear warm-up, cosine decay to 10 %) runs on that clock: its progress is the
CPU time used over the largest budget, so every run ends its schedule exactly at the budget whatever its step
cost. At each budget the worker measures, on held-out episodes:

- the module's validation metrics, teacher-forced: action accuracy, state MSE (normalised units), text loss,
  over ``--val-batches`` batches;
- free-running first-action agreement with the behaviour policy (exact action, direction within 45°) on 64
  cases of the training goals and of the rephrase level (``kalm.grounding.metrics.action_agreement``);
- strict explanation accuracy on 32 held-out successful episodes (``explanation_metrics``).

The table prints every run against the first (the baseline), with ratios. Measured (README, Backbones): at 10
CPU minutes SmolLM2 (8 layers) and Gemma 3 (4 layers) are level on the teacher-forced metrics (action accuracy
0.21 vs 0.19), Gemma ahead earlier and on free-running ball choice. ``--from-json`` reprints a table
from the workers' result files without running anything.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

METRICS = (
    ("action_acc", "action accuracy", True),
    ("state_mse", "state MSE", False),
    ("text_loss", "text loss", False),
    ("action_agreement/train/exact", "agreement train exact", True),
    ("action_agreement/train/direction_within_45°", "agreement train dir45", True),
    ("action_agreement/rephrase/exact", "agreement rephrase exact", True),
    ("explanation_accuracy", "explanation accuracy", True),
)
TICKS = 10_000
"""Resolution of the CPU-time clock of the learning-rate decay (schedule steps from warm-up to the budget)."""


def held_out(module: Any, datamodule: Any, batches: int) -> dict[str, float]:
    """Teacher-forced validation metrics over the first ``batches`` held-out batches (pooled over targets)."""
    import torch

    correct, errors, texts = [], [], []
    with torch.no_grad():
        for index, batch in enumerate(datamodule.val_dataloader()):
            if index == batches:
                break
            output = module.model(batch)
            correct.append(output.action_correct.float())
            errors.append(output.state_errors)
            texts.append(output.text_losses)
    return {
        "action_acc": float(torch.cat(correct).mean()),
        "state_mse": float(torch.cat(errors).mean()),
        "text_loss": float(torch.cat(texts).mean()),
    }


def evaluate(module: Any, datamodule: Any, val_batches: int) -> dict[str, float]:
    from kalm.grounding.metrics import action_agreement, explanation_metrics

    was_training = module.model.training
    module.model.eval()
    metrics = held_out(module, datamodule, val_batches)
    for level in ("train", "rephrase"):
        metrics.update(action_agreement(module.model, module.suite, level, count=64))
    episodes = []
    for row in datamodule.episodes(validation=True):
        if row["success"]:
            episodes.append(row)
        if len(episodes) == 32:
            break
    metrics.update(explanation_metrics(module.model, module.suite, episodes))
    module.model.train(was_training)
    return metrics


def worker(args: argparse.Namespace) -> None:
    import lightning as L
    import torch

    from datamodules.rollout_goal import RolloutGoalDataModule
    from kalm.grounding.module import GroundingModule, lr_schedule
    from kalm.pipeline.config import parse

    backbone, layers = args.worker.split(":")
    settings = parse([]).ground  # the default run's grounding sections
    L.seed_everything(args.seed, verbose=False)
    loading = time.process_time()
    module = GroundingModule(
        **settings.model | {"backbone": backbone, "num_layers": int(layers), "metrics_every": 0}, env="clevr"
    )
    data = RolloutGoalDataModule(
        **settings.data,
        dataset=args.dataset,
        revision=args.revision,
        env="clevr",
        backbone=backbone,
        seed=args.seed,
    )
    data.setup("fit")
    module.model.codec.set_normalization(**data.state_stats())
    loading = time.process_time() - loading
    budgets = [60.0 * minutes for minutes in args.budgets]
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    header = {
        "run": args.worker,
        "backbone": backbone,
        "num_layers": int(layers),
        "threads": torch.get_num_threads(),
        "load_cpu_s": round(loading, 1),
        "trainable_parameters": trainable,
        "points": [],
    }
    out = Path(args.out)

    class CPUBudget(L.Callback):
        """Evaluates at each CPU-time budget (evaluation CPU excluded) and stops after the last."""

        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.start, self.excluded, self.left = time.process_time(), 0.0, list(budgets)
            scheduler = trainer.lr_scheduler_configs[0].scheduler
            warmup = pl_module.hparams.warmup_steps
            # the module's schedule (warm-up in steps), its decay driven by CPU time in TICKS steps to the
            # budget
            probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
            module_factor = lr_schedule(probe, warmup=warmup, total=warmup + TICKS).lr_lambdas[0]

            def factor(step: int) -> float:
                if step < warmup:
                    return module_factor(step)
                return module_factor(warmup + round(TICKS * min(1.0, self.used() / budgets[-1])))

            scheduler.lr_lambdas = [factor] * len(scheduler.lr_lambdas)

        def used(self) -> float:
            return time.process_time() - self.start - self.excluded

        def record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            used, began = self.used(), time.process_time()
            point = {
                "budget_min": self.left[0] / 60 if self.left else None,
                "cpu_min": round(used / 60, 2),
                "steps": trainer.global_step,
                "step_cpu_s": round(used / max(1, trainer.global_step), 3),
                **evaluate(pl_module, data, args.val_batches),
            }
            self.excluded += time.process_time() - began
            header["points"].append(point)
            out.write_text(json.dumps(header, indent=2) + "\n")
            print(f"{args.worker}: {point}", flush=True)

        def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *_: Any) -> None:
            if self.left and self.used() >= self.left[0]:
                self.record(trainer, pl_module)
                self.left.pop(0)
                trainer.should_stop = not self.left

        def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            if self.left:  # the data ran out first: measure where it stopped
                self.record(trainer, pl_module)

    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=-1,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[CPUBudget()],
    )
    trainer.fit(module, datamodule=data)


def table(results: list[dict[str, Any]]) -> str:
    base = results[0]
    lines = [
        f"Baseline: {base['run']}. Each cell: run value (ratio to the baseline at the same CPU budget).",
        "",
        "| metric | CPU min | "
        + " | ".join(r["run"] for r in results)
        + "".join(f" | {r['run']} / {base['run']}" for r in results[1:])
        + " |",
        "|---|---|" + "---|" * (2 * len(results) - 1),
    ]
    for key, name, _higher in METRICS:
        for index, point in enumerate(base["points"]):
            values = [
                r["points"][index].get(key, math.nan) if index < len(r["points"]) else math.nan
                for r in results
            ]
            ratios = [value / values[0] if values[0] else math.nan for value in values[1:]]
            lines.append(
                f"| {name} | {point['budget_min']:g} | "
                + " | ".join(f"{v:.3f}" for v in values)
                + "".join(f" | {ratio:.2f}" for ratio in ratios)
                + " |"
            )
    lines += [
        "",
        "| run | CPU min used at each budget | steps | CPU s per step | trainable params | load CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        cpu, steps = (" / ".join(str(p[key]) for p in r["points"]) for key in ("cpu_min", "steps"))
        per_step = " / ".join(str(p.get("step_cpu_s", "")) for p in r["points"])
        lines.append(
            f"| {r['run']} | {cpu} | {steps} | {per_step} | "
            f"{r['trainable_parameters']:,} | {r['load_cpu_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="kalm/kalm-clevr-real", help="Hub dataset repo or local folder")
    parser.add_argument("--revision", default="v1.0")
    parser.add_argument(
        "--runs",
        nargs="+",
        default=["smollm2-135m:8", "gemma3-270m:4"],
        help="BACKBONE:LAYERS; the first is the baseline",
    )
    parser.add_argument("--budgets", type=float, nargs="+", default=[10, 20], help="CPU minutes per run")
    parser.add_argument("--val-batches", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-backbones"))
    parser.add_argument("--from-json", action="store_true", help="print the table of finished workers only")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    args.work.mkdir(parents=True, exist_ok=True)
    files = [args.work / (run.replace(":", "-") + ".json") for run in args.runs]
    if not args.from_json:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        common = [
            "--dataset",
            args.dataset,
            "--revision",
            args.revision,
            "--val-batches",
            str(args.val_batches),
            "--seed",
            str(args.seed),
            "--budgets",
            *map(str, args.budgets),
        ]
        workers = [
            subprocess.Popen(
                [sys.executable, __file__, *common, "--worker", run, "--out", str(path)], env=env
            )
            for run, path in zip(args.runs, files, strict=True)
        ]
        codes = [process.wait() for process in workers]
        if any(codes):
            raise SystemExit(f"a worker failed: exit codes {codes}")
    print(table([json.loads(path.read_text()) for path in files]))


if __name__ == "__main__":
    main()
