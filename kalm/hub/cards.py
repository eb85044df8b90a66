"""Dataset and model cards: YAML metadata through huggingface_hub's ``DatasetCardData``/``ModelCardData``, the
prose from the Jinja templates in ``hub_cards/`` (rendered by ``DatasetCard``/``ModelCard.from_template``).

The templates live in the top-level ``hub_cards/`` folder (installed with the package; override with
``$KALM_HUB_CARDS``); ``{{ card_data }}`` in a template is the YAML front matter. Every variable a
template names must be given.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from huggingface_hub import CardData, DatasetCard, DatasetCardData, ModelCard, ModelCardData, RepoCard

import kalm
from kalm.errors import ConfigError

DATASET_TAGS = ("KALM", "offline-rl", "rollouts")
SIZE_STEPS = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
)
DATA_FILES = "data/*.parquet"


def cards_dir() -> Path:
    """The folder holding ``dataset.md`` and ``model.md``: ``$KALM_HUB_CARDS``, the checkout's
    ``hub_cards/``, or the copy installed with the package."""
    if os.environ.get("KALM_HUB_CARDS"):
        return Path(os.environ["KALM_HUB_CARDS"])
    checkout = Path(kalm.__file__).resolve().parents[1] / "hub_cards"
    if checkout.is_dir():
        return checkout
    return Path(str(importlib.resources.files("hub_cards")))


def size_category(episodes: int) -> str:
    """The Hub's ``size_categories`` bucket for a number of rows."""
    return next((label for limit, label in SIZE_STEPS if episodes < limit), "n>100M")


def dataset_card(
    repo_id: str,
    version: str,
    info: dict[str, Any],
    *,
    pretty_name: str | None,
    description: str,
    license: str,
) -> str:
    """The README.md of a rollout dataset at ``version``, from its ``meta/info.json`` (``info``)."""
    totals, spec = info["totals"], info["rollout_spec"]
    pretty = pretty_name or f"KALM {info['env']} rollouts"
    imaginary = totals["sources"].get("imaginary", 0) > 0
    data = DatasetCardData(
        license=license,
        pretty_name=pretty,
        task_categories=["robotics", "reinforcement-learning"],
        tags=[*DATASET_TAGS, info["env"], *(["imaginary-rollouts"] if imaginary else [])],
        size_categories=[size_category(totals["episodes"])],
        source_datasets=[source["repo_id"] for source in info["provenance"].get("source_datasets") or []],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": DATA_FILES}]}],
    )
    return _render(
        DatasetCard,
        "dataset",
        data,
        {
            "description": description or f"{totals['episodes']} rollouts of `{info['env']}` for KALM.",
            "env": info["env"],
            "obs_dim": spec["obs_dim"],
            "action_kind": f"integers in [0, {spec['action_dim']})"
            if spec["discrete"]
            else f"float32 vectors of length {spec['action_dim']}",
            "episodes": totals["episodes"],
            "transitions": totals["transitions"],
            "success_rate": f"{totals['success_rate']:.3f}",
            "mean_length": f"{totals['mean_length']:.1f}",
            "levels": _counts(totals["levels"]),
            "sources": _counts(totals["sources"]),
            "format_version": info["codebase_version"],
            "version": version,
            "provenance": provenance_markdown(info["provenance"]),
            "repo_id": repo_id,
        },
    )


def model_card(
    repo_id: str,
    version: str,
    provenance: dict[str, Any],
    *,
    env: str,
    base_model: str,
    pretty_name: str | None,
    description: str,
    license: str,
    library_name: str,
) -> str:
    """The README.md of a model repo at ``version``."""
    pretty = pretty_name or f"KALM grounded {base_model} for {env}"
    data = ModelCardData(
        license=license,
        pretty_name=pretty,
        library_name=library_name,
        pipeline_tag="text-generation",
        tags=["KALM", "grounding", env],
        datasets=[source["repo_id"] for source in provenance.get("source_datasets") or []],
        base_model=base_model,
    )
    return _render(
        ModelCard,
        "model",
        data,
        {
            "description": description or pretty,
            "env": env,
            "version": version,
            "provenance": provenance_markdown(provenance),
            "repo_id": repo_id,
        },
    )


def _render(card: type[RepoCard], kind: str, data: CardData, fields: dict[str, Any]) -> str:
    """``hub_cards/<kind>.md`` rendered with ``data`` as front matter and ``fields`` (every variable
    given)."""
    path = cards_dir() / f"{kind}.md"
    if not path.is_file():
        raise ConfigError(f"card template {path} is missing (set KALM_HUB_CARDS to the hub_cards folder)")
    needed = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(path.read_text()))
    missing = sorted(needed - {"card_data"} - set(fields) - set(data.to_dict()))
    if missing:
        raise ConfigError(f"card template {path} needs the field(s) {', '.join(missing)}")
    rendered = card.from_template(data, template_path=str(path), **fields)
    if not rendered.data.to_dict():
        raise ConfigError(f"card template {path} did not render to YAML front matter ({{{{ card_data }}}})")
    return str(rendered)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items())) or "none"


def provenance_markdown(provenance: dict[str, Any]) -> str:
    """A bullet list of the provenance entries a reader cares about."""
    lines = []
    for source in provenance.get("source_datasets") or []:
        lines.append(
            f"- source dataset: `{source.get('repo_id')}` "
            f"at `{source.get('commit') or source.get('revision')}`"
        )
    model = provenance.get("generator_model")
    if model:
        lines.append(
            f"- generator model: `{model.get('repo_id')}` at `{model.get('commit') or model.get('revision')}`"
        )
    for depth, parent in enumerate(provenance.get("lineage") or []):
        role = "initialised from" if depth == 0 else "which was initialised from"
        lines.append(
            f"- {role}: `{parent.get('repo_id')}` at `{parent.get('commit') or parent.get('revision')}`"
        )
    backbone = provenance.get("backbone")
    if backbone:
        layers = f", first {backbone['num_layers']} layers" if backbone.get("num_layers") else ""
        lines.append(
            f"- backbone: `{backbone.get('name')}` at `{backbone.get('revision') or 'default'}`{layers}"
        )
    for key in ("collector", "goal_encoder", "seed", "kalm_version", "kalm_git_sha", "created_at"):
        if provenance.get(key) not in (None, ""):
            lines.append(f"- {key.replace('_', ' ')}: `{provenance[key]}`")
    if provenance.get("hindsight_copies"):
        lines.append(
            f"- hindsight copies: `{provenance['hindsight_copies']}` of the rows are real episodes "
            "relabelled with another training goal they achieve, cut at its first success "
            "(each shares its parent's `episode_id`)"
        )
    if provenance.get("config"):
        lines.append("- configuration: recorded with the rest of the provenance (see below)")
    return "\n".join(lines) or "- no provenance was recorded"
