"""Grounded LMs on the Hub: push as a versioned model repo, load by repo id and revision (or a folder)."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import lightning as L
from typing_extensions import override

from kalm.errors import ConfigError
from kalm.backbones import backbone_license
from kalm.grounding.contracts import grounding_data
from kalm.grounding.model import CONFIG_FILE, GroundedLM, GroundingConfig
from kalm.hub.provenance import MODEL_PROVENANCE
from kalm.hub.reference import Location, locate

if TYPE_CHECKING:
    from kalm.grounding.module import GroundingModule

log = logging.getLogger(__name__)


def push_grounded(
    model: GroundedLM,
    repo_id: str,
    *,
    env: str,
    version: str | None = None,
    provenance: dict[str, Any] | None = None,
    description: str = "",
) -> Any:
    """Save ``model`` and publish it as a new version of model repo ``repo_id``; returns ``Published``."""
    from kalm.hub.endpoint import ensure_endpoint
    from kalm.hub.models import publish_model

    ensure_endpoint()
    config = model.config
    provenance = {
        "config": {
            "finetune": config.finetune,
            "num_layers": config.num_layers,
            "lora_rank": config.lora_rank if config.finetune == "lora" else None,
        },
        **lineage_provenance(config),
        **(provenance or {}),
    }
    with tempfile.TemporaryDirectory(prefix="kalm-grounded-") as folder:
        model.save_pretrained(folder)
        return publish_model(
            folder,
            repo_id,
            env=env,
            base_model=base_model(config),
            provenance=provenance,
            version=version,
            description=description or _description(model, env),
            license=backbone_license(config.backbone),
        )


def base_model(config: GroundingConfig) -> str:
    """The card's ``base_model``: the parent grounded model's repo when it is a Hub repo, else the
    backbone."""
    parent = config.lineage[0] if config.lineage else None
    return str(parent["repo_id"]) if parent and parent.get("commit") != "local" else config.backbone


def lineage_provenance(config: GroundingConfig) -> dict[str, Any]:
    """Where a grounded model comes from: its backbone and, if it was initialised from grounded models, the
    nearest (``parent_model``) and the whole chain back to the backbone (``lineage``, nearest first)."""
    provenance: dict[str, Any] = {
        "backbone": {"name": config.backbone, "revision": config.revision, "num_layers": config.num_layers}
    }
    if config.lineage:
        provenance["parent_model"] = dict(config.lineage[0])
        provenance["lineage"] = [dict(entry) for entry in config.lineage]
    return provenance


@dataclass(frozen=True)
class LoadedGrounded:
    """A grounded LM with where it came from: repo (or folder), commit sha (``local``), its provenance and the
    revision it was asked for (the latest version tag when none was given; ``None`` for a folder)."""

    model: GroundedLM
    source: str
    commit: str
    provenance: dict[str, Any]
    revision: str | None = None


def load_grounded(repo_or_path: str, revision: str | None = None) -> LoadedGrounded:
    """Load a grounded LM from a local folder or a Hub model repo at ``revision`` (default: latest version).

    ``repo_or_path`` may carry the revision as ``REPO@REV`` (``kalm.hub.reference``).
    """
    location = _locate(repo_or_path, revision)
    if location.folder is not None:
        check_grounded_folder(location.folder, repo_or_path)
        return LoadedGrounded(
            GroundedLM.from_pretrained(location.folder),
            repo_or_path,
            "local",
            _read_provenance(location.folder),
        )
    from kalm.hub.endpoint import ensure_endpoint
    from kalm.hub.models import pull_model

    repo = str(location.repo_id)
    ensure_endpoint()
    pulled = pull_model(repo, location.revision)
    check_grounded_folder(pulled.path, f"{repo}@{pulled.revision} ({pulled.commit[:12]})")
    return LoadedGrounded(
        GroundedLM.from_pretrained(pulled.path),
        repo,
        pulled.commit,
        _read_provenance(pulled.path),
        pulled.revision,
    )


def _locate(reference: str, revision: str | None = None) -> Location:
    return locate(
        reference,
        revision,
        what="grounded model",
        hint="expected a folder written by kalm or a Hub model repo REPO[@REV]",
    )


def resolve_grounded(reference: str) -> str:
    """The commit sha a grounded model ``REPO[@REV]`` resolves to (its latest version when no revision is
    given), without downloading it; ``local`` for a folder."""
    location = _locate(reference)
    if location.folder is not None:
        return "local"
    from kalm.hub.endpoint import ensure_endpoint, hub_api
    from kalm.hub.versions import latest_revision, resolve_commit

    ensure_endpoint()
    repo, revision = str(location.repo_id), location.revision
    api = hub_api()
    return resolve_commit(api, repo, revision or latest_revision(api, repo, "model"), "model")


_KINDS = (
    ("policy.json", "a kalm policy"),
    ("meta/info.json", "a kalm rollout dataset"),
    ("adapter_config.json", "a bare peft adapter"),
    ("config.json", "a plain transformers model"),
)


def check_grounded_folder(folder: Path, label: str) -> None:
    """Raise a one-line ``ConfigError`` naming what ``folder`` holds if it is not a grounded model written by
    kalm."""
    if (folder / CONFIG_FILE).is_file():
        return
    files = sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())
    kind = next((name for marker, name in _KINDS if marker in files), "not a kalm grounded model")
    shown = ", ".join(files[:6]) + (", ..." if len(files) > 6 else "") if files else "no files"
    raise ConfigError(
        f"{label} is {kind} ({shown}); expected a kalm grounded model, which has {CONFIG_FILE} "
        "(written by kalm ground / GroundedLM.save_pretrained)"
    )


def _read_provenance(folder: Path) -> dict[str, Any]:
    path = folder / MODEL_PROVENANCE
    return json.loads(path.read_text()) if path.is_file() else {}


class PublishGroundedModel(L.Callback):
    """At the end of ``fit``, push the grounded LM to the hub as a new version of ``repo_id``.

    Args:
        repo_id: the model repo, e.g. ``kalm/kalm-clevr-grounded-smollm2-135m-8l``.
        version: the tag to create (default: the next free ``vMAJOR.MINOR``).
    """

    def __init__(self, repo_id: str, version: str | None = None) -> None:
        self.repo_id, self.version = repo_id, version
        self.published: Any = None

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        model = cast(
            "GroundingModule", pl_module
        ).full_model()  # every rank: gathering sharded weights is a collective
        if not trainer.is_global_zero:
            return
        data = grounding_data(getattr(trainer, "datamodule", None))
        sources = []
        if data is not None and data.resolved_revision not in (None, "local"):
            sources.append({"repo_id": data.dataset, "revision": data.resolved_revision})
        metrics = {
            key: float(value) for key, value in trainer.callback_metrics.items() if key.startswith("val/")
        }
        self.published = push_grounded(
            model,
            self.repo_id,
            env=str(pl_module.hparams["env"]),
            version=self.version,
            provenance={"source_datasets": sources, "metrics": metrics, "steps": trainer.global_step},
        )
        log.info("pushed %s %s (%s)", self.repo_id, self.published.version, self.published.commit)


def _description(model: GroundedLM, env: str) -> str:
    config = model.config
    mode = f"LoRA rank {config.lora_rank}" if config.finetune == "lora" else "full fine-tuning"
    layers = f"first {config.num_layers} layers of " if config.num_layers else ""
    return (
        f"The {layers}{config.backbone} grounded in {env} with KALM's four grounding tasks ({mode}): "
        "it translates between goal sentences and rollouts (states and actions enter through a codec)."
    )
