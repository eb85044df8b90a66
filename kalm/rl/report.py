"""Evaluation reports: success rate per level and policy as JSON, a markdown table and a PNG bar chart.

The chart is drawn with Pillow (already installed with imageio), so no plotting library is needed:
one group of bars per level, one bar per policy, with the 95 % Wilson interval as an error bar.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from kalm.rl.evaluation import LevelResult, result_dict

COLOURS = [(76, 114, 176), (221, 132, 82), (85, 168, 104), (196, 78, 82), (129, 114, 179), (147, 120, 96)]


@dataclass
class EvalReport:
    """Results of one or more policies on the same cases.

    Attributes:
        env: environment name.
        results: policy name -> level -> result.
        settings: episodes, seed and anything else that defines the cases.
    """

    env: str
    results: dict[str, dict[str, LevelResult]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def levels(self) -> list[str]:
        return list(dict.fromkeys(level for per_level in self.results.values() for level in per_level))

    def to_dict(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "settings": self.settings,
            "results": {
                name: {level: result_dict(r) for level, r in per_level.items()}
                for name, per_level in self.results.items()
            },
        }

    def to_markdown(self) -> str:
        """A table: one row per policy, one column per level, ``rate % [low, high] (n)``."""
        levels = self.levels
        lines = ["| policy | " + " | ".join(levels) + " |", "|---|" + "---|" * len(levels)]
        for name, per_level in self.results.items():
            cells = [_cell(per_level[level]) if level in per_level else "–" for level in levels]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

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


def _cell(result: LevelResult) -> str:
    low, high = 100 * result.ci_low, 100 * result.ci_high
    return f"{100 * result.rate:.1f} % [{low:.1f}, {high:.1f}] (n={result.episodes})"


def bar_chart(report: EvalReport, path: str | Path, *, width: int = 900, height: int = 480) -> Path:
    """Grouped bars of the success rate per level and policy, with 95 % intervals, saved as PNG."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, right, top, bottom = 60, width - 20, 40, height - 70
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
            draw.rectangle([(x0, y), (x0 + bar - 2, bottom)], fill=COLOURS[pi % len(COLOURS)])
            xc = x0 + bar / 2 - 1
            low, high = (bottom - (bottom - top) * v for v in (result.ci_low, result.ci_high))
            draw.line([(xc, low), (xc, high)], fill="black", width=2)
            draw.line([(xc - 4, low), (xc + 4, low)], fill="black")
            draw.line([(xc - 4, high), (xc + 4, high)], fill="black")
    draw.line([(left, bottom), (right, bottom)], fill="black")
    for pi, name in enumerate(names):
        x = left + pi * 280
        draw.rectangle([(x, height - 28), (x + 12, height - 16)], fill=COLOURS[pi % len(COLOURS)])
        draw.text((x + 18, height - 29), name[:42], fill="black", font=font)
    image.save(path)
    return Path(path)
