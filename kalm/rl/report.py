"""Evaluation reports: success rate per level and policy as JSON, a markdown table and a PNG bar chart.

Every table shows the floors (trivial policies evaluated on the same cases, ``EnvSuite.floor_policies``) as
rows next to the learned policies, each comparison (e.g. KALM − baseline) with its paired interval, and, for
levels that mix kinds of goals, the rate per kind (``EnvSuite.goal_kind``).

The chart is drawn with Pillow (already installed with imageio), so no plotting library is needed:
one group of bars per level, one bar per policy, with the 95 % interval as an error bar.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from kalm.rl.evaluation import LevelResult, level_result, result_dict
from kalm.rl.stats import paired_difference

COLOURS = [(76, 114, 176), (221, 132, 82), (85, 168, 104), (196, 78, 82), (129, 114, 179), (147, 120, 96)]
FLOOR_COLOURS = [(170, 170, 170), (120, 120, 120), (200, 200, 200)]
FLOOR_PREFIX = "floor: "
"""Floor policies appear under their suite name with this prefix."""


@dataclass
class EvalReport:
    """Results of policies (and floors) on the same cases.

    Attributes:
        env: environment name.
        results: policy name -> level -> result (floors named ``floor: <name>``).
        settings: episodes, seeds and anything else that defines the cases.
        comparisons: ``(treated, control)`` pairs of policy names whose paired difference is reported.
    """

    env: str
    results: dict[str, dict[str, LevelResult]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    comparisons: list[tuple[str, str]] = field(default_factory=list)

    @property
    def levels(self) -> list[str]:
        return list(dict.fromkeys(level for per_level in self.results.values() for level in per_level))

    def add_floors(self, floors: dict[str, dict[str, LevelResult]]) -> None:
        for name, per_level in floors.items():
            self.results[FLOOR_PREFIX + name] = per_level

    def difference(self, treated: str, control: str, level: str) -> tuple[float, float, float]:
        """``treated − control`` on ``level`` with its paired 95 % interval (the same cases on both sides)."""
        a, b = self.results[treated][level], self.results[control][level]
        if a.goal_ids != b.goal_ids or a.groups != b.groups:
            raise ValueError(f"{treated!r} and {control!r} were not evaluated on the same {level} cases")
        return paired_difference(a.outcomes, b.outcomes, a.groups)

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "settings": self.settings,
            "results": {
                name: {level: result_dict(r) for level, r in per_level.items()}
                for name, per_level in self.results.items()
            },
            "comparisons": [
                {
                    "treated": treated,
                    "control": control,
                    **{
                        level: dict(
                            zip(
                                ("difference", "ci_low", "ci_high"),
                                self.difference(treated, control, level),
                                strict=True,
                            )
                        )
                        for level in self.levels
                        if level in self.results[treated]
                    },
                }
                for treated, control in self.comparisons
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalReport:
        """The report ``to_dict`` wrote (intervals are recomputed from the outcomes)."""
        results = {
            name: {
                level: level_result(
                    level, r["outcomes"], r.get("goal_ids", ()), r.get("groups"), interval=r.get("interval")
                )
                for level, r in per_level.items()
            }
            for name, per_level in data["results"].items()
        }
        comparisons = [(c["treated"], c["control"]) for c in data.get("comparisons", [])]
        return cls(data["env"], results, dict(data.get("settings", {})), comparisons)

    def to_markdown(self) -> str:
        """The success table (policies, floors, comparisons) and the per-kind breakdown."""
        return success_table(self) + "\n\n" + _intervals_note(self) + "\n" + kinds_table(self)

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write ``report.json``, ``report.md`` and ``success.png`` into ``folder``; returns their paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": folder / "report.json",
            "markdown": folder / "report.md",
            "png": folder / "success.png",
        }
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        paths["markdown"].write_text(self.to_markdown())
        bar_chart(self, paths["png"])
        return paths


def success_table(report: EvalReport) -> str:
    """Markdown: one row per policy and floor, ``rate % [low, high]``, then one row per comparison."""
    levels = report.levels
    lines = ["| policy | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]
    for name, per_level in report.results.items():
        cells = [_cell(per_level[level]) if level in per_level else "–" for level in levels]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for treated, control in report.comparisons:
        cells = []
        for level in levels:
            difference, low, high = report.difference(treated, control, level)
            cells.append(f"{100 * difference:+.1f} pt [{100 * low:+.1f}, {100 * high:+.1f}]")
        lines.append(f"| {_label(treated)} − {_label(control)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kinds_table(report: EvalReport, levels: Sequence[str] | None = None) -> str:
    """Markdown: the success rate per kind of goal, for every level whose goals are of several kinds."""
    from kalm.envs import LEVELS, get_suite

    suite = get_suite(report.env)
    blocks = []
    for level in levels or report.levels:
        any_result = next(per_level[level] for per_level in report.results.values() if level in per_level)
        present = {suite.goal_kind(goal) for goal in any_result.goal_ids}
        known = [suite.goal_kind(goal.id) for goal in suite.goals(level)] if level in LEVELS else []
        kinds = [kind for kind in dict.fromkeys([*known, *sorted(present)]) if kind in present]
        if len(kinds) < 2:
            continue
        lines = [
            f"{level} goals by kind:",
            "",
            "| policy | " + " | ".join(kinds) + " |",
            "|---|" + "---|" * len(kinds),
        ]
        for name, per_level in report.results.items():
            if level not in per_level:
                continue
            result = per_level[level]
            cells = []
            for kind in kinds:
                picked = [
                    o
                    for o, g in zip(result.outcomes, result.goal_ids, strict=True)
                    if suite.goal_kind(g) == kind
                ]
                cells.append(f"{100 * sum(picked) / len(picked):.1f} % (n={len(picked)})")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _intervals_note(report: EvalReport) -> str:
    kinds = {result.interval for per_level in report.results.values() for result in per_level.values()}
    parts = []
    if "bootstrap" in kinds:
        parts.append(
            "policies trained with several seeds: a bootstrap over the seeds and the cases within each"
        )
    if "wilson" in kinds:
        parts.append("one policy on independent cases (floors, single seeds): Wilson score")
    if report.comparisons:
        parts.append("differences: a paired bootstrap over the same seeds and cases on both sides")
    return "95 % intervals: " + "; ".join(parts) + ".\n"


def _label(name: str) -> str:
    return {"kalm": "KALM"}.get(name, name)


def _cell(result: LevelResult) -> str:
    low, high = 100 * result.ci_low, 100 * result.ci_high
    return f"{100 * result.rate:.1f} % [{low:.1f}, {high:.1f}] (n={result.episodes})"


def bar_chart(report: EvalReport, path: str | Path, *, width: int = 900, height: int = 480) -> Path:
    """Grouped bars of the success rate per level and policy, with 95 % intervals, saved as PNG."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 60, width - 20, 40, height - 80
    draw.text((left, 12), f"success rate per level ({report.env})", fill="black", font=font)
    for tick in range(0, 101, 20):
        y = bottom - (bottom - top) * tick / 100
        draw.line([(left, y), (right, y)], fill=(225, 225, 225))
        draw.text((left - 40, y - 6), f"{tick}%", fill="black", font=font)
    names, levels = list(report.results), report.levels
    group = (right - left) / max(1, len(levels))
    bar = group * 0.8 / max(1, len(names))
    for li, level in enumerate(levels):
        draw.text(
            (left + li * group + group / 2 - 3 * len(level), bottom + 8), level, fill="black", font=font
        )
        for pi, name in enumerate(names):
            result = report.results[name].get(level)
            if result is None:
                continue
            x0 = left + li * group + group * 0.1 + pi * bar
            y = bottom - (bottom - top) * result.rate
            draw.rectangle([(x0, y), (x0 + bar - 2, bottom)], fill=_colour(names, pi))
            xc = x0 + bar / 2 - 1
            low, high = (bottom - (bottom - top) * v for v in (result.ci_low, result.ci_high))
            draw.line([(xc, low), (xc, high)], fill="black", width=2)
            draw.line([(xc - 4, low), (xc + 4, low)], fill="black")
            draw.line([(xc - 4, high), (xc + 4, high)], fill="black")
    draw.line([(left, bottom), (right, bottom)], fill="black")
    columns = max(1, (right - left) // 210)
    for pi, name in enumerate(names):
        x, y = left + (pi % columns) * 210, height - 44 + 16 * (pi // columns)
        draw.rectangle([(x, y), (x + 12, y + 12)], fill=_colour(names, pi))
        draw.text((x + 18, y - 1), name[:32], fill="black", font=font)
    image.save(path)
    return Path(path)


def _colour(names: list[str], index: int) -> tuple[int, int, int]:
    """Learned policies in colour, floors in greys."""
    if names[index].startswith(FLOOR_PREFIX):
        return FLOOR_COLOURS[sum(n.startswith(FLOOR_PREFIX) for n in names[:index]) % len(FLOOR_COLOURS)]
    return COLOURS[sum(not n.startswith(FLOOR_PREFIX) for n in names[:index]) % len(COLOURS)]
