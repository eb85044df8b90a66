"""Publish and pull versioned rollout datasets (one commit + an immutable ``vMAJOR.MINOR`` tag per publish).

A publish validates its input, writes everything into a temporary folder, uploads the large files
(invisible until committed), commits them in ONE commit (the repo only changes if the whole commit
lands) and tags the commit with the next free version (or the one given). A pull resolves the revision
to a commit sha first and reads everything at that sha: ``meta/info.json`` (whose format version is
checked before anything else is downloaded), then the shards with ``snapshot_download``, decoded once
into an in-memory ``datasets.Dataset``. Both report the seconds of each phase in ``timings``. What the
provenance records: :mod:`kalm.hub.provenance`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError

from kalm.data import (
    INFO_PATH,
    RolloutSpec,
    check_features,
    check_format_version,
    load_shards,
    read_info,
    read_rollouts,
    write_rollouts,
)
from kalm.errors import DatasetSchemaError
from kalm.hub.cards import DATA_FILES, dataset_card
from kalm.hub.commits import Published, commit_and_tag, ensure_repo, folder_additions, preupload_folder
from kalm.hub.endpoint import Endpoint, hub_api
from kalm.hub.errors import hub_errors
from kalm.hub.provenance import kalm_provenance, pin_sources
from kalm.hub.timings import timed
from kalm.hub.versions import free_version, latest_revision, resolve_commit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PulledDataset:
    """A rollout dataset read at one commit, with its ``meta/info.json``; seconds per phase."""

    dataset: datasets.Dataset
    repo_id: str
    revision: str
    commit: str
    info: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def publish_dataset(
    data: datasets.Dataset | str | Path,
    repo_id: str,
    *,
    env: str | None = None,
    spec: RolloutSpec | None = None,
    provenance: dict[str, Any] | None = None,
    version: str | None = None,
    bump: str = "minor",
    branch: str = "main",
    private: bool = False,
    pretty_name: str | None = None,
    description: str = "",
    license: str = "apache-2.0",  # the card field's name
    endpoint: Endpoint | None = None,
) -> Published:
    """Validate and publish a rollout dataset (a ``datasets.Dataset`` or a folder from ``write_rollouts``).

    ``env`` and ``spec`` are required for a ``Dataset`` and read from ``meta/info.json`` for a folder.
    Returns the version tag and commit; raises ``DatasetSchemaError`` or ``HubError`` leaving the repo as it
    was. Phases timed: ``encode`` (parquet shards), ``upload`` (hashing and sending them), ``commit`` (commit
    and tag).
    """
    timings: dict[str, float] = {}
    dataset, env, spec, provenance = _dataset_inputs(data, env, spec, provenance)
    api = hub_api(endpoint)
    provenance = {**pin_sources(api, provenance), **kalm_provenance()}
    with tempfile.TemporaryDirectory(prefix="kalm-publish-") as tmp:
        with timed(timings, "encode"):
            folder = write_rollouts(dataset, Path(tmp) / "dataset", env=env, spec=spec, provenance=provenance)
        info = read_info(folder)
        ensure_repo(api, repo_id, "dataset", branch, private)
        free_version(api, repo_id, "dataset", version, bump)  # refuse a taken version before uploading
        with timed(timings, "upload"):
            hashes = preupload_folder(api, repo_id, repo_type="dataset", branch=branch, folder=folder)

        def build(chosen: str, existing: list[str]) -> tuple[list[CommitOperationAdd], Any]:
            card = dataset_card(
                repo_id, chosen, info, pretty_name=pretty_name, description=description, license=license
            )
            additions = [*folder_additions(folder, hashes), CommitOperationAdd("README.md", card.encode())]
            return additions, lambda path: path.startswith(("data/", "meta/"))

        with timed(timings, "commit"):
            tag, sha = commit_and_tag(
                api,
                repo_id,
                repo_type="dataset",
                branch=branch,
                version=version,
                bump=bump,
                build=build,
                message=f"Publish {info['totals']['episodes']} {env} rollouts",
            )
    logger.info("published %s %s (%s) on %s", repo_id, tag, sha, api.endpoint)
    return Published(repo_id, "dataset", tag, sha, api.endpoint, timings)


def _dataset_inputs(
    data: datasets.Dataset | str | Path,
    env: str | None,
    spec: RolloutSpec | None,
    provenance: dict[str, Any] | None,
) -> tuple[datasets.Dataset, str, RolloutSpec, dict[str, Any]]:
    dataset: datasets.Dataset
    if isinstance(data, (str, Path)):
        info = read_info(data)
        dataset = read_rollouts(data)
        env = env or info["env"]
        spec = spec or RolloutSpec.from_dict(info["rollout_spec"])
        provenance = {**info.get("provenance", {}), **(provenance or {})}
    else:
        dataset = data
    if env is None or spec is None:
        raise DatasetSchemaError(
            "publishing a Dataset needs env= and spec= (the RolloutSpec of its environment)"
        )
    check_features(dataset.features, spec)
    if len(dataset) == 0:
        raise DatasetSchemaError("the dataset has no rollouts: there is nothing to publish")
    return dataset, env, spec, dict(provenance or {})


def pull_dataset(
    repo_id: str, revision: str | None = None, *, endpoint: Endpoint | None = None, streaming: bool = False
) -> PulledDataset:
    """Load a published rollout dataset at ``revision`` (default: its latest version tag), pinned to a commit.

    ``streaming=True`` gives an ``IterableDataset`` through ``datasets.load_dataset``. Phases timed:
    ``resolve`` (revision to commit), ``download`` (info and shards), ``decode`` (shards to a Dataset).
    Raises ``DatasetSchemaError`` for an unsupported format version or schema, ``HubError`` for Hub failures.
    """
    timings: dict[str, float] = {}
    api = hub_api(endpoint)
    with timed(timings, "resolve"):
        revision = revision or latest_revision(api, repo_id, "dataset")
        sha = resolve_commit(api, repo_id, revision, "dataset")
    with timed(timings, "download"):
        info = _download_info(api, repo_id, revision, sha)
    check_format_version(info.get("codebase_version"))
    patterns = info.get("data_files", DATA_FILES)
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    if streaming:
        with hub_errors(repo_id, revision, api.endpoint, "loading the dataset"):
            dataset = datasets.load_dataset(
                repo_id, revision=sha, split="train", streaming=True, data_files={"train": patterns}
            )
    else:
        with timed(timings, "download"):
            files = _download_shards(api, repo_id, revision, sha, patterns)
        with timed(timings, "decode"):
            fingerprint = hashlib.sha256(f"{api.endpoint} {repo_id} {sha} {patterns}".encode()).hexdigest()[
                :32
            ]
            dataset = load_shards(files, fingerprint=fingerprint)
    check_features(dataset.features, RolloutSpec.from_dict(info["rollout_spec"]))
    return PulledDataset(dataset, repo_id, revision, sha, info, timings)


def _download_info(api: HfApi, repo_id: str, revision: str, sha: str) -> dict[str, Any]:
    """``meta/info.json`` of the dataset at commit ``sha`` (``DatasetSchemaError`` when it has none)."""
    with hub_errors(repo_id, revision, api.endpoint, "downloading meta/info.json"):
        try:
            info_path = hf_hub_download(
                repo_id, INFO_PATH, repo_type="dataset", revision=sha, endpoint=api.endpoint, token=api.token
            )
        except EntryNotFoundError:
            raise DatasetSchemaError(
                f"{repo_id!r} at {revision!r} is not a kalm rollout dataset: {INFO_PATH} is missing"
            ) from None
    return json.loads(Path(info_path).read_text())


def _download_shards(api: HfApi, repo_id: str, revision: str, sha: str, patterns: list[str]) -> list[Path]:
    """The parquet shards matching ``patterns`` at commit ``sha``, downloaded (in parallel) into the HF
    cache."""
    with hub_errors(repo_id, revision, api.endpoint, "downloading the shards"):
        folder = Path(
            snapshot_download(
                repo_id,
                repo_type="dataset",
                revision=sha,
                allow_patterns=patterns,
                endpoint=api.endpoint,
                token=api.token,
            )
        )
    files = sorted({path for pattern in patterns for path in folder.glob(pattern) if path.is_file()})
    if not files:
        raise DatasetSchemaError(f"{repo_id!r} at {revision!r} has no parquet shards matching {patterns}")
    return files
