"""Dataset and model cards rendered from the templates in ``hub_cards/`` (``string.Template`` syntax).

The templates live in the top-level ``hub_cards/`` folder (installed with the package; override with
``$KALM_HUB_CARDS``).
Scalars in the YAML front matter are written as JSON strings (valid YAML), lists as YAML block lists;
the rendered front matter is parsed back as a check.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import string
from pathlib import Path
from typing import Any

import yaml

import kalm
from kalm.errors import ConfigError

DATASET_TAGS = ("KALM", "offline-rl", "rollouts")
SIZE_STEPS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))


def cards_dir() -> Path:
    """The folder holding ``dataset.md`` and ``model.md``: ``$KALM_HUB_CARDS``, the checkout's
    ``hub_cards/``, or the copy installed with the package."""
    if os.environ.get("KALM_HUB_CARDS"):
        return Path(os.environ["KALM_HUB_CARDS"])
    checkout = Path(kalm.__file__).resolve().parents[1] / "hub_cards"
    if checkout.is_dir():
        return checkout
    return Path(str(importlib.resources.files("hub_cards")))


def yaml_list(items: list[Any]) -> str:
    """The value of a YAML list key written as ``key:$value``: a newline and ``- item`` lines, or `` []``."""
    return "".join(f"\n- {json.dumps(str(item))}" for item in items) if items else " []"


def size_category(episodes: int) -> str:
    """The Hub's ``size_categories`` bucket for a number of rows."""
    return next((label for limit, label in SIZE_STEPS if episodes < limit), "n>100M")


def render_card(kind: str, fields: dict[str, Any]) -> str:
    """Render ``hub_cards/<kind>.md`` with ``fields``; every placeholder must be given."""
    path = cards_dir() / f"{kind}.md"
    if not path.is_file():
        raise ConfigError(f"card template {path} is missing (set KALM_HUB_CARDS to the hub_cards folder)")
    try:
        text = string.Template(path.read_text()).substitute(fields)
    except KeyError as missing:
        raise ConfigError(f"card template {path} needs the field {missing}") from None
    front = text.split("---", 2)[1]
    if not isinstance(yaml.safe_load(front), dict):
        raise ConfigError(f"card template {path} did not render to YAML front matter")
    return text


def provenance_markdown(provenance: dict[str, Any]) -> str:
    """A bullet list of the provenance entries a reader cares about."""
    lines = []
    for source in provenance.get("source_datasets") or []:
        lines.append(f"- source dataset: `{source.get('repo_id')}` at `{source.get('commit') or source.get('revision')}`")
    model = provenance.get("generator_model")
    if model:
        lines.append(f"- generator model: `{model.get('repo_id')}` at `{model.get('commit') or model.get('revision')}`")
    for depth, parent in enumerate(provenance.get("lineage") or []):
        role = "initialised from" if depth == 0 else "which was initialised from"
        lines.append(f"- {role}: `{parent.get('repo_id')}` at `{parent.get('commit') or parent.get('revision')}`")
    backbone = provenance.get("backbone")
    if backbone:
        layers = f", first {backbone['num_layers']} layers" if backbone.get("num_layers") else ""
        lines.append(f"- backbone: `{backbone.get('name')}` at `{backbone.get('revision') or 'default'}`{layers}")
    for key in ("collector", "goal_encoder", "seed", "kalm_version", "kalm_git_sha", "created_at"):
        if provenance.get(key) not in (None, ""):
            lines.append(f"- {key.replace('_', ' ')}: `{provenance[key]}`")
    if provenance.get("config"):
        lines.append("- configuration: recorded with the rest of the provenance (see below)")
    return "\n".join(lines) or "- no provenance was recorded"
