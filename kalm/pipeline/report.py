"""The run report: ``report.md`` + ``report.json`` + figures (success chart, imagined-vs-real GIFs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kalm.envs.base import EnvSuite
from kalm.pipeline.figures import rollout_gif
from kalm.pipeline.state import RunState

STAGES = ("real_data", "grounding", "imagination", "learn_baseline", "learn_kalm", "evaluate")


def success_table(evaluation: dict[str, Any]) -> str:
    """Markdown: success rate per level for each policy, with 95 % intervals, and KALM minus baseline."""
    results = evaluation["report"]["results"]
    levels = list(next(iter(results.values())))
    lines = ["| policy | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]
    for name, per_level in results.items():
        cells = [f"{100 * r['rate']:.1f} % [{100 * r['ci_low']:.0f}, {100 * r['ci_high']:.0f}]"
                 for r in (per_level[level] for level in levels)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if {"baseline", "kalm"} <= set(results):
        deltas = [100 * (results["kalm"][level]["rate"] - results["baseline"][level]["rate"]) for level in levels]
        lines.append("| KALM − baseline | " + " | ".join(f"{delta:+.1f} pt" for delta in deltas) + " |")
    return "\n".join(lines)


def _episodes(settings: dict[str, Any]) -> str:
    seeds = settings.get("seeds", [settings.get("seed")])
    if len(seeds) == 1:
        return f"{settings['episodes']} episodes per level"
    return (f"{settings['episodes']} episodes per level for each of {len(seeds)} training seeds "
            f"({len(seeds) * settings['episodes']} pooled)")


def _per_seed(evaluation: dict[str, Any]) -> list[str]:
    """Lines with each seed's success rates, when there are several seeds."""
    if len(evaluation["report"]["settings"].get("seeds", [])) < 2:
        return []
    per_seed = evaluation["per_seed"]
    lines = ["Per training seed:", ""]
    for name, levels in per_seed.items():
        cells = ", ".join(f"{level} " + " / ".join(f"{100 * rate:.0f}" for rate in rates) for level, rates in levels.items())
        lines.append(f"- {name}: {cells} %")
    return [*lines, ""]


def gifs(suite: EnvSuite, imaginary: dict[str, Any], folder: Path, count: int) -> list[str]:
    """Side-by-side GIFs of imagined rollouts (one per novel level, successful ones first)."""
    if count <= 0 or not imaginary["summary"]["episodes"]:
        return []
    from kalm.hub.publish import pull_dataset

    dataset = pull_dataset(imaginary["repo_id"], imaginary["commit"]).dataset.with_format("numpy")
    levels, success, lengths = (np.asarray(dataset[column]) for column in ("level", "success", "length"))
    written = []
    for level in list(dict.fromkeys(levels.tolist()))[:count]:
        candidates = np.flatnonzero((levels == level) & (lengths > 1))
        if not candidates.size:
            candidates = np.flatnonzero(levels == level)
        ranked = sorted(candidates.tolist(), key=lambda i: (not success[i], i))
        row = dataset[int(ranked[0])]
        path = rollout_gif(suite, folder / "figures" / f"imagined-vs-real-{level}.gif", goal_id=str(row["goal_id"]),
                           level=str(level), sentence=str(row["instruction"]), observations=row["observations"],
                           actions=row["actions"], seed=int(row["seed"]))
        if path is not None:
            written.append(str(path.relative_to(folder)))
    return written


def write_report(folder: Path, *, name: str, suite: EnvSuite, state: RunState, real: dict[str, Any],
                 model: dict[str, Any], imaginary: dict[str, Any], evaluation: dict[str, Any],
                 figures: list[str]) -> Path:
    """Write ``report.md`` and ``report.json`` into the run folder; returns the markdown path."""
    chart = Path(evaluation["files"]["png"]).relative_to(folder)
    timings = {stage: state.seconds(stage) for stage in STAGES}
    metrics = model.get("metrics", {})
    lines = [
        f"# KALM run `{name}` on {suite.name}", "",
        "## Success rate per level", "",
        ("Baseline: offline RL on real data only. KALM: the same algorithm, steps and seeds on real plus "
         f"imaginary rollouts. {_episodes(evaluation['report']['settings'])}, 95 % Wilson intervals."), "",
        success_table(evaluation), "", *_per_seed(evaluation), f"![success rate per level]({chart})", "",
        "## Grounding", "",
        (f"Model `{model['repo_id']}` {model.get('version') or ''} (commit `{model['commit'][:12]}`), "
         f"{model.get('steps', '?')} training steps."), "",
        "| metric | value |", "|---|---|",
        *[f"| {key.removeprefix('val/')} | {value:.3f} |" for key, value in sorted(metrics.items())
          if "explanation" in key or "match_rate" in key or key in ("val/action_acc", "val/state_mse")], "",
        "## Imaginary data", "",
        (f"`{imaginary['repo_id']}` {imaginary['version']}: {imaginary['summary']['episodes']} rollouts kept "
         f"({imaginary['summary']['transitions']} transitions), per level {imaginary['summary']['levels']}."), "",
        imaginary["filter_table"], "",
        "## Real data", "",
        (f"`{real['repo_id']}` {real.get('version')}: {real['summary'].get('episodes')} rollouts, success rate "
         f"{real['summary'].get('success_rate', float('nan')):.3f}."), "",
        "## Timings", "", "| stage | seconds |", "|---|---|",
        *[f"| {stage} | {seconds:.1f} |" for stage, seconds in timings.items() if seconds is not None], "",
        "## Imagined rollouts next to the real environment", "",
        ("Left: states imagined by the grounded LM. Right: the real environment replaying the imagined actions "
         "from the same initial state."), "",
        *[f"![{Path(path).stem}]({path})" for path in figures], "",
    ]
    markdown = folder / "report.md"
    markdown.write_text("\n".join(lines))
    (folder / "report.json").write_text(json.dumps({
        "name": name, "env": suite.name, "real": real, "grounding": model, "imaginary": imaginary,
        "evaluation": evaluation["report"], "timings": timings, "figures": figures,
    }, indent=2, default=str) + "\n")
    return markdown
