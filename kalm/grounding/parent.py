"""Grounding that starts from a grounded model (``init_from``) instead of from the raw backbone.

The new model takes the parent's backbone reference, its fine-tuned weights (LoRA adapters, or the whole
backbone after full fine-tuning) with the settings that shape them (``num_layers``, ``finetune``, the LoRA
rank, alpha and targets), and its codec when the new environment's rollouts have the parent's shapes
(``obs_dim``, ``action_dim``, ``discrete``): then the codec keeps its weights and normalisation statistics.
Otherwise the codec is new (what the transformer learnt carries over, the numeric interface does not), and
the log says so in one line. The parent is recorded first in ``GroundingConfig.lineage``, followed by its own
lineage, so provenance chains back to the backbone.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from kalm.errors import ConfigError
from kalm.grounding.hub import load_grounded
from kalm.grounding.model import GroundedLM, GroundingConfig, build_codec

log = logging.getLogger(__name__)

BACKBONE_FIELDS = ("backbone", "revision")
"""What must agree between the configuration and the parent: the backbone the new model (and the data's
tokenizer) is built on."""
WEIGHT_FIELDS = ("num_layers", "finetune", "lora_rank", "lora_alpha", "lora_dropout", "lora_targets")
"""Settings that shape the parent's fine-tuned weights: taken from the parent."""
CODEC_FIELDS = (
    "codec_hidden",
    "residual_states",
    "state_objects",
    "object_actions",
    "object_relations",
    "object_action_inputs",
    "action_kinds",
    "action_kind_scores",
)
"""Settings of the codec: the parent's when its codec is kept, the configuration's for a new one."""


@dataclass(frozen=True)
class Initialised:
    """The new model and whether it kept the parent's codec (with its normalisation statistics)."""

    model: GroundedLM
    codec_kept: bool


def init_from_parent(reference: str, config: GroundingConfig) -> Initialised:
    """A model for ``config`` starting from the grounded model ``reference`` (``REPO[@REV]`` or a folder).

    Raises a one-line ``ConfigError`` when ``reference`` is not a kalm grounded model or was grounded from
    another backbone than ``config`` names.
    """
    loaded = load_grounded(reference)
    model, parent = loaded.model, loaded.model.config
    check_backbone(reference, parent, config)
    weights = {name: getattr(parent, name) for name in WEIGHT_FIELDS}
    overridden = [
        f"{name}={weights[name]!r} (configured {getattr(config, name)!r})"
        for name in WEIGHT_FIELDS
        if getattr(config, name) != weights[name]
    ]
    if overridden:
        log.info("init_from %s: the parent's weights fix %s", reference, ", ".join(overridden))
    codec_kept = _shapes(parent) == _shapes(config)
    codec = {name: getattr(parent if codec_kept else config, name) for name in CODEC_FIELDS}
    entry = {"repo_id": loaded.source, "revision": loaded.revision, "commit": loaded.commit}
    model.config = dataclasses.replace(config, **weights, **codec, lineage=[entry, *parent.lineage])
    if codec_kept:
        log.info(
            "init_from %s: backbone %s, %s weights and codec from the parent",
            reference,
            parent.backbone,
            parent.finetune,
        )
    else:
        model.set_codec(build_codec(model.config, model.backbone, model.tokenizer))
        log.info(
            "init_from %s: new codec: the parent reads %s, this environment has %s",
            reference,
            _describe(parent),
            _describe(config),
        )
    return Initialised(model.train(), codec_kept)


def check_backbone(reference: str, parent: GroundingConfig, config: GroundingConfig) -> None:
    """Refuse a parent grounded from another backbone (or revision) than the configuration names."""
    found = {name: getattr(parent, name) for name in BACKBONE_FIELDS}
    expected = {name: getattr(config, name) for name in BACKBONE_FIELDS}
    if found != expected:
        raise ConfigError(
            f"init_from {reference!r}: the parent was grounded from {_pairs(found)}; the configuration "
            f"expects {_pairs(expected)} (set the backbone to the parent's, or start from another model)"
        )


def _shapes(config: GroundingConfig) -> tuple[int, int, bool]:
    return config.obs_dim, config.action_dim, config.discrete


def _describe(config: GroundingConfig) -> str:
    kind = "discrete" if config.discrete else "continuous"
    return f"obs_dim={config.obs_dim}, action_dim={config.action_dim} ({kind})"


def _pairs(values: dict[str, object]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in values.items())
