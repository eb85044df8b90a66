"""Transfer of grounding: two ``kalm run`` folders side by side, one grounded from the raw backbone (the
baseline) and one from a grounded model (``--ground.model.init_from``), same preset, data and seed.

    python bench/grounding_transfer.py runs/babyai runs/babyai-from-clevr [--steps 100 200 400]

Prints, at each grounding step (the validation nearest to it), held-out metrics of both runs with the
difference and the ratio transfer / baseline: teacher-forced state error (normalised MSE) and action accuracy
on held-out episodes, and free-running action agreement with the behaviour policy per level (exact action;
``.../chance`` is a uniformly random action's). Then each run's KALM - baseline success table (the policies).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

METRICS = (
    "val/state_mse",
    "val/action_acc",
    "val/action_agreement/train/exact",
    "val/action_agreement/rephrase/exact",
    "val/action_agreement/easy/exact",
    "val/action_agreement/hard/exact",
    "val/explanation_accuracy",
    "val/match_rate/train",
)


def grounding_log(run: Path) -> list[dict[str, float]]:
    """The validation rows of a run's grounding (``metrics.csv`` of its grounding stage), by step."""
    stages = json.loads((run / "stages.json").read_text())
    key = stages["grounding"]["key"]
    paths = sorted((run / "ground" / key / "logs").glob("version_*/metrics.csv"))
    if not paths:
        raise SystemExit(
            f"{run}: no grounding log under ground/{key}/logs (was the model pulled, not grounded?)"
        )
    rows = []
    for path in paths:
        with path.open() as handle:
            for row in csv.DictReader(handle):
                values = {name: float(value) for name, value in row.items() if value not in ("", None)}
                if "val/state_mse" in values:
                    rows.append(values)
    return rows


def at_step(rows: list[dict[str, float]], step: int) -> dict[str, float]:
    return min(rows, key=lambda row: abs(row["step"] - step))


def comparison(run: Path) -> dict[str, dict[str, float]]:
    report = json.loads((run / "report.json").read_text())
    return next(
        c for c in report["evaluation"]["comparisons"] if (c["treated"], c["control"]) == ("kalm", "baseline")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="run folder grounded from the raw backbone")
    parser.add_argument("transfer", type=Path, help="run folder grounded from a grounded model")
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 200, 400])
    args = parser.parse_args()
    logs = {
        name: grounding_log(run) for name, run in (("baseline", args.baseline), ("transfer", args.transfer))
    }
    print(f"grounding: {args.baseline} (raw backbone) vs {args.transfer} (from a grounded model)\n")
    print("| metric | step | raw backbone | transfer | difference | ratio |")
    print("|---|---|---|---|---|---|")
    for metric in METRICS:
        for step in args.steps:
            base, moved = (
                at_step(logs[name], step).get(metric, math.nan) for name in ("baseline", "transfer")
            )
            ratio = moved / base if base else math.nan
            print(
                f"| {metric.removeprefix('val/')} | {step} | {base:.3f} | {moved:.3f} | "
                f"{moved - base:+.3f} | {ratio:.2f} |"
            )
    chance = at_step(logs["baseline"], args.steps[-1])
    print(
        "\nchance (uniform random action): "
        + ", ".join(
            f"{level} {chance.get(f'val/action_agreement/{level}/exact/chance', math.nan):.3f}"
            for level in ("train", "rephrase", "easy", "hard")
        )
    )
    for name, run in (("raw backbone", args.baseline), ("transfer", args.transfer)):
        try:
            rows = comparison(run)
        except FileNotFoundError:
            continue
        levels = [level for level in rows if level not in ("treated", "control")]
        print(f"\nKALM - baseline ({name}, {run}):\n")
        print("| " + " | ".join(["", *levels]) + " |")
        print("|---|" + "---|" * len(levels))
        cells = [
            f"{100 * rows[level]['difference']:+.1f} pt [{100 * rows[level]['ci_low']:+.1f}, "
            f"{100 * rows[level]['ci_high']:+.1f}]"
            for level in levels
        ]
        print("| KALM - baseline | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
