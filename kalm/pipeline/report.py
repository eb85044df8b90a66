"""The run report: ``report.md`` + ``report.json`` + figures (success chart, imagined-vs-real GIFs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from kalm.envs.base import EnvSuite
from kalm.envs.cases import UNSEEN_PHRASINGS
from kalm.hub.provenance import describe_machine
from kalm.pipeline.figures import rollout_gif
from kalm.pipeline.state import RunState
from kalm.rl.report import EvalReport
from kalm.rl.report import success_table as table

STAGES = ("real_data", "grounding", "imagination", "learn_baseline", "learn_kalm", "evaluate")


def success_table(evaluation: dict[str, Any]) -> str:
    """Markdown: success rate per level for each policy and floor with 95 % intervals, and KALM − baseline."""
    return table(EvalReport.from_dict(evaluation["report"]))


def _episodes(settings: dict[str, Any]) -> str:
    seeds = settings.get("seeds", [settings.get("seed")])
    if len(seeds) == 1:
        return f"{settings['episodes']} episodes per level and policy."
    return (
        f"{settings['episodes']} episodes per level for each of {len(seeds)} training seeds, "
        f"each seed on its own cases ({len(seeds) * settings['episodes']} per policy); "
        "seed s of the baseline and of KALM play the same cases, and the floors play all of them."
    )


def protocol_lines(suite: EnvSuite, levels: list[str], policy_protocol: str) -> list[str]:
    """The evaluation protocol, as the report states it: each level's judge and what the KALM policy learned
    from."""
    lines = ["Protocol (each level's horizon and judge; the same judges label the imaginary rollouts):", ""]
    for level in levels:
        if level == UNSEEN_PHRASINGS:
            lines.append(
                f"- {level}: the rephrase cases, each said in one of its goal's sentences that imagination "
                "never prompted with (every other sentence is held out); judged as rephrase"
            )
        else:
            lines.append(f"- {level}: {suite.protocol(level).judge}")
    options = {level: suite.evaluation_options(level) for level in levels if level != UNSEEN_PHRASINGS}
    if any(options.values()):
        lines.append(f"- evaluation reset options: {options}")
    lines.append(f"- policies: {POLICY_PROTOCOLS[policy_protocol]}")
    return [*lines, ""]


POLICY_PROTOCOLS = {
    "pooled": "one KALM policy, trained on the real data plus the imaginary rollouts of every novel level",
    "per_level": (
        "one KALM policy per novel level, trained on the real data plus that level's imaginary rollouts; "
        "the train column shows the rephrase policy (the paper's protocol, reference §7)"
    ),
}


def diagnostics_table(metrics: dict[str, float]) -> list[str]:
    """The grounding diagnostics beside their chance or best-constant levels (``kalm.grounding.metrics``)."""
    rows = ["| diagnostic | value | chance or best constant |", "|---|---|---|"]
    for key, value in sorted(metrics.items()):
        name = key.removeprefix("val/")
        if name.endswith(("/chance", "/constant")) or not name.startswith(
            ("explanation", "action_agreement", "match_rate")
        ):
            continue
        reference = metrics.get(f"{key}/chance", metrics.get(f"{key}/constant"))
        rows.append(f"| {name} | {value:.3f} | {'' if reference is None else f'{reference:.3f}'} |")
    for key, label in (
        ("val/action_acc", "action_acc (teacher-forced)"),
        ("val/state_mse", "state_mse (teacher-forced)"),
    ):
        if key in metrics:
            rows.append(f"| {label} | {metrics[key]:.3f} | |")
    return rows


def stalled_lines(model: dict[str, Any]) -> list[str]:
    """The grounding attempts ``ground.stall_check`` abandoned at chance, and the seed that grounded."""
    stalled = model.get("stalled") or []
    if not stalled:
        return []
    attempts = "; ".join(
        f"seed {record['seed']}: validation action loss {record['action_loss']:.3f} at step {record['step']}"
        for record in stalled
    )
    return [
        (
            f"**{len(stalled)} grounding attempt(s) stalled at chance** (ln of the action count: "
            f"{stalled[-1]['chance']:.3f}) and were abandoned ({attempts}); this model was grounded under "
            f"seed {model['seed']}."
        ),
        "",
    ]


def replay_table(replay: dict[str, dict[str, float]] | None) -> list[str]:
    """Per level: how many kept rollouts reach their goal when their actions are replayed in the simulator."""
    if not replay:
        return []
    rows = [
        "| level | kept rollouts | replay reaches the goal | labelled successful "
        "| of those, replay reaches it | imagined and real part at step (mean) | never part |",
        "|---|---|---|---|---|---|---|",
    ]
    rows += [
        f"| {level} | {int(r['rollouts'])} | {r['replay_success']:.1%} "
        f"| {r.get('imagined_success', float('nan')):.1%} "
        f"| {r.get('replay_success_of_imagined', float('nan')):.1%} | {r['parted_at']:.1f} "
        f"| {r['never_parted']:.1%} |"
        for level, r in replay.items()
    ]
    return [*rows, ""]


def check_table(policies: dict[str, dict[str, Any]] | None) -> list[str]:
    """Per level, what the dynamics check (``imaginary_check: dynamics``) confirmed for each policy's first
    seed, and how many of the rollouts it confirmed as successful replay to success in the simulator."""
    rows = []
    for name, trained in (policies or {}).items():
        first = trained["seeds"][0]
        replay = first.get("check_replay", {})
        for level, counts in first.get("check", {}).items():
            confirmed = replay.get(level, {}).get("replay_success", float("nan"))
            rows.append(
                f"| {name} | {level} | {counts.get('labelled successful', 0)} "
                f"| {counts.get('confirmed successful', 0)} | {confirmed:.1%} "
                f"| {counts.get('labelled unsuccessful', 0)} | {counts.get('confirmed unsuccessful', 0)} |"
            )
    if not rows:
        return []
    return [
        (
            "Dynamics check (`imaginary_check: dynamics`): an ensemble fitted to the real transitions runs "
            "each imagined action sequence again from its initial state, and the policy learns only from "
            "rollouts whose label every member reproduces (first seed's ensemble; the replay is a diagnostic "
            "the policy never sees)."
        ),
        "",
        "| policy | level | labelled successful | confirmed | of those, replay reaches the goal "
        "| labelled unsuccessful | confirmed |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def timings_table(state: RunState) -> list[str]:
    """Each finished stage's wall time, and the machine it ran on: one line when every stage ran on the
    same one, a column when a resumed run finished on another (their seconds are not comparable)."""
    ran = [stage for stage in STAGES if state.seconds(stage) is not None]
    machines = {
        stage: describe_machine(facts) if (facts := state.machine(stage)) else "not recorded" for stage in ran
    }
    if len(set(machines.values())) <= 1:
        lines = [
            "| stage | seconds |",
            "|---|---|",
            *[f"| {stage} | {state.seconds(stage):.1f} |" for stage in ran],
        ]
        return [*lines, "", *([f"Machine: {next(iter(machines.values()))}."] if machines else [])]
    return [
        "| stage | seconds | machine |",
        "|---|---|---|",
        *[f"| {stage} | {state.seconds(stage):.1f} | {machines[stage]} |" for stage in ran],
    ]


def _per_seed(evaluation: dict[str, Any]) -> list[str]:
    """Lines with each seed's success rates, when there are several seeds."""
    if len(evaluation["report"]["settings"].get("seeds", [])) < 2:
        return []
    per_seed = evaluation["per_seed"]
    lines = ["Per training seed:", ""]
    for name, levels in per_seed.items():
        cells = ", ".join(
            f"{level} " + " / ".join(f"{100 * rate:.0f}" for rate in rates) for level, rates in levels.items()
        )
        lines.append(f"- {name}: {cells} %")
    return [*lines, ""]


def gifs(suite: EnvSuite, imaginary: dict[str, Any], folder: Path, count: int) -> list[str]:
    """Side-by-side GIFs of imagined rollouts (one per novel level, successful ones first)."""
    if count <= 0 or not imaginary["summary"]["episodes"]:
        return []
    from kalm.hub.datasets import pull_dataset

    dataset = pull_dataset(imaginary["repo_id"], imaginary["commit"]).dataset.with_format("numpy")
    levels, success, lengths = (np.asarray(dataset[column]) for column in ("level", "success", "length"))
    written = []
    for level in list(dict.fromkeys(levels.tolist()))[:count]:
        candidates = np.flatnonzero((levels == level) & (lengths > 1))
        if not candidates.size:
            candidates = np.flatnonzero(levels == level)
        ranked = sorted(candidates.tolist(), key=lambda i: (not success[i], i))
        row = dataset[int(ranked[0])]
        path = rollout_gif(
            suite,
            folder / "figures" / f"imagined-vs-real-{level}.gif",
            goal_id=str(row["goal_id"]),
            level=str(level),
            sentence=str(row["instruction"]),
            observations=row["observations"],
            actions=row["actions"],
            seed=int(row["seed"]),
        )
        if path is not None:
            written.append(str(path.relative_to(folder)))
    return written


def write_report(
    folder: Path,
    *,
    name: str,
    suite: EnvSuite,
    state: RunState,
    real: dict[str, Any],
    model: dict[str, Any],
    imaginary: dict[str, Any],
    evaluation: dict[str, Any],
    figures: list[str],
    policies: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write ``report.md`` and ``report.json`` into the run folder; returns the markdown path."""
    chart = Path(evaluation["files"]["png"]).relative_to(folder)
    timings = {stage: state.seconds(stage) for stage in STAGES}
    metrics = model.get("metrics", {})
    settings = evaluation["report"]["settings"]
    report = EvalReport.from_dict(evaluation["report"])
    lines = [
        f"# KALM run `{name}` on {suite.name}",
        "",
        "## Success rate per level",
        "",
        (
            "Baseline: offline RL on real data only. KALM: the same algorithm, steps and seeds on real plus "
            f"imaginary rollouts. Floors: trivial policies on the same cases. {_episodes(settings)}"
        ),
        "",
        *protocol_lines(suite, report.levels, settings.get("policy_protocol", "pooled")),
        report.to_markdown(),
        *_per_seed(evaluation),
        f"![success rate per level]({chart})",
        "",
        "## Grounding",
        "",
        (
            f"Model `{model['repo_id']}` {model.get('version') or ''} (commit `{model['commit'][:12]}`), "
            f"{model.get('steps', '?')} training steps. Explanations are read by a strict interpreter on "
            "held-out real episodes that reached their goal; action agreement compares the model's first "
            "action, decoded freely from the goal and a real initial state, with the behaviour policy's."
        ),
        "",
        *stalled_lines(model),
        *diagnostics_table(metrics),
        "",
        "## Imaginary data",
        "",
        (
            f"`{imaginary['repo_id']}` {imaginary['version']}: "
            f"{imaginary['summary']['episodes']} rollouts kept "
            f"({imaginary['summary']['transitions']} transitions), "
            f"per level {imaginary['summary']['levels']}."
        ),
        "",
        imaginary["filter_table"],
        "",
        *replay_table(imaginary.get("replay")),
        *check_table(policies),
        "## Real data",
        "",
        (
            f"`{real['repo_id']}` {real.get('version')}: {real['summary'].get('episodes')} rollouts, "
            f"success rate {real['summary'].get('success_rate', float('nan')):.3f}."
        ),
        "",
        "## Timings",
        "",
        *timings_table(state),
        "",
        "## Imagined rollouts next to the real environment",
        "",
        (
            "Left: states imagined by the grounded LM. Right: the real environment replaying the imagined "
            "actions from the same initial state."
        ),
        "",
        *[f"![{Path(path).stem}]({path})" for path in figures],
        "",
    ]
    markdown = folder / "report.md"
    markdown.write_text("\n".join(lines))
    (folder / "report.json").write_text(
        json.dumps(
            {
                "name": name,
                "env": suite.name,
                "real": real,
                "grounding": model,
                "imaginary": imaginary,
                "evaluation": evaluation["report"],
                "timings": timings,
                "machines": {stage: facts for stage in STAGES if (facts := state.machine(stage))},
                "figures": figures,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    return markdown
