"""What a publish records about where its content came from: the software that made it and the pinned inputs.

Keys the cards render (all optional; any other key is kept as is): ``source_datasets`` (list of
``{"repo_id", "revision"}``), ``generator_model`` (``{"repo_id", "revision"}``), ``lineage``, ``backbone``,
``collector``, ``goal_encoder``, ``seed``, ``config``. :func:`pin_sources` adds the commit sha
(``"commit"``) of every source dataset and of the generator model at publish time.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import HfApi

import kalm
from kalm.hub.versions import resolve_commit

MODEL_PROVENANCE = (
    "kalm_provenance.json"  # beside a published model's files; datasets keep it in meta/info.json
)


def kalm_provenance() -> dict[str, Any]:
    """What every publish records about the software that made it (``publish_id`` makes every commit unique)."""
    return {
        "publish_id": uuid.uuid4().hex,
        "kalm_version": kalm.__version__,
        "kalm_git_sha": git_sha(Path(kalm.__file__).resolve().parents[1]),
        "huggingface_hub_version": huggingface_hub.__version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def git_sha(folder: Path) -> str | None:
    """The commit checked out in ``folder`` (``None`` outside a git checkout or without git)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def pin_sources(api: HfApi, provenance: dict[str, Any]) -> dict[str, Any]:
    """``provenance`` with the commit sha of every source dataset and of the generator model that lacks one."""
    pinned = dict(provenance)
    sources = []
    for source in provenance.get("source_datasets") or []:
        source = dict(source)
        source.setdefault("commit", resolve_commit(api, source["repo_id"], source.get("revision"), "dataset"))
        sources.append(source)
    if sources:
        pinned["source_datasets"] = sources
    model = provenance.get("generator_model")
    if model and "commit" not in model:
        pinned["generator_model"] = {
            **model,
            "commit": resolve_commit(api, model["repo_id"], model.get("revision"), "model"),
        }
    return pinned
