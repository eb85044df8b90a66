"""Publish and pull versioned model repos: a saved model folder as one commit + an immutable version tag."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, snapshot_download

from kalm.errors import HubError
from kalm.hub.cards import model_card
from kalm.hub.commits import Published, commit_and_tag, ensure_repo, folder_additions, preupload_folder
from kalm.hub.endpoint import Endpoint, hub_api
from kalm.hub.errors import hub_errors
from kalm.hub.provenance import MODEL_PROVENANCE, kalm_provenance, pin_sources
from kalm.hub.timings import timed
from kalm.hub.versions import free_version, latest_revision, resolve_commit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PulledModel:
    """A local snapshot folder of a model repo at one commit."""

    path: Path
    repo_id: str
    revision: str
    commit: str


def publish_model(
    folder: str | Path,
    repo_id: str,
    *,
    env: str = "unknown",
    base_model: str = "unknown",
    provenance: dict[str, Any] | None = None,
    version: str | None = None,
    bump: str = "minor",
    branch: str = "main",
    private: bool = False,
    pretty_name: str | None = None,
    description: str = "",
    license: str = "apache-2.0",
    library_name: str = "transformers",
    endpoint: Endpoint | None = None,
) -> Published:
    """Publish a saved model folder (``save_pretrained`` output) as one commit plus a version tag.

    The commit makes the repo hold exactly the folder's files (plus ``kalm_provenance.json`` and a
    README card rendered from ``hub_cards/model.md`` when the folder has none).
    """
    folder = Path(folder)
    if not folder.is_dir() or not any(folder.iterdir()):
        raise HubError(f"cannot publish {repo_id!r}: model folder {folder} is missing or empty")
    api = hub_api(endpoint)
    provenance = {**pin_sources(api, provenance or {}), **kalm_provenance()}
    provenance_bytes = (json.dumps(provenance, indent=2, sort_keys=True) + "\n").encode()

    def build(chosen: str, existing: list[str]) -> tuple[list[CommitOperationAdd], Any]:
        additions = [
            *folder_additions(folder, hashes),
            CommitOperationAdd(MODEL_PROVENANCE, provenance_bytes),
        ]
        if not (folder / "README.md").exists():
            card = model_card(
                repo_id,
                chosen,
                provenance,
                env=env,
                base_model=base_model,
                pretty_name=pretty_name,
                description=description,
                license=license,
                library_name=library_name,
            )
            additions.append(CommitOperationAdd("README.md", card.encode()))
        return additions, lambda path: path != ".gitattributes"

    timings: dict[str, float] = {}
    ensure_repo(api, repo_id, "model", branch, private)
    free_version(api, repo_id, "model", version, bump)  # refuse a taken version before uploading
    with timed(timings, "upload"):
        hashes = preupload_folder(api, repo_id, repo_type="model", branch=branch, folder=folder)
    with timed(timings, "commit"):
        tag, sha = commit_and_tag(
            api,
            repo_id,
            repo_type="model",
            branch=branch,
            version=version,
            bump=bump,
            build=build,
            message=f"Publish model {repo_id}",
        )
    logger.info("published model %s %s (%s) on %s", repo_id, tag, sha, api.endpoint)
    return Published(repo_id, "model", tag, sha, api.endpoint, timings)


def pull_model(repo_id: str, revision: str | None = None, *, endpoint: Endpoint | None = None) -> PulledModel:
    """Download a model repo at ``revision`` (default: its latest version tag) into the HF cache."""
    api = hub_api(endpoint)
    revision = revision or latest_revision(api, repo_id, "model")
    sha = resolve_commit(api, repo_id, revision, "model")
    with hub_errors(repo_id, revision, api.endpoint, "downloading the model"):
        path = snapshot_download(repo_id, revision=sha, endpoint=api.endpoint, token=api.token)
    return PulledModel(Path(path), repo_id, revision, sha)
