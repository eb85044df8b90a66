"""Publish and pull versioned rollout datasets and models (commit + immutable ``vMAJOR.MINOR`` tag).

A publish validates its input, writes everything into a temporary folder, uploads the large files
(invisible until committed), commits them in ONE commit (the repo only changes if the whole commit
lands) and tags the commit with the next free version (or the one given). A pull resolves the revision
to a commit sha first and reads everything at that sha: ``meta/info.json`` (whose format version is
checked before anything else is downloaded), then the shards with ``snapshot_download``, decoded once
into an in-memory ``datasets.Dataset``. Both report the seconds of each phase in ``timings``.

Provenance keys that the cards render (all optional; any other keys are kept in ``meta/info.json``):
``source_datasets`` (list of ``{"repo_id", "revision"}``), ``generator_model`` (``{"repo_id", "revision"}``),
``collector``, ``goal_encoder``, ``seed``, ``config``. Revisions of sources and of the generator model
are pinned to commit shas (``"commit"``) at publish time.
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
from huggingface_hub import CommitOperationAdd, hf_hub_download, snapshot_download
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
from kalm.errors import DatasetSchemaError, HubError
from kalm.hub.cards import DATASET_TAGS, provenance_markdown, render_card, size_category, yaml_list
from kalm.hub.client import (
    commit_and_tag,
    folder_additions,
    free_version,
    hub_api,
    hub_errors,
    kalm_provenance,
    list_versions,
    preupload_folder,
    resolve_commit,
    timed,
)
from kalm.hub.endpoint import Endpoint

logger = logging.getLogger(__name__)
MODEL_PROVENANCE = "kalm_provenance.json"


@dataclass(frozen=True)
class Published:
    """Where a publish landed: repo, version tag, commit sha and endpoint; seconds per phase."""

    repo_id: str
    repo_type: str
    version: str
    commit: str
    endpoint: str
    timings: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PulledDataset:
    """A rollout dataset read at one commit, with its ``meta/info.json``; seconds per phase."""

    dataset: datasets.Dataset
    repo_id: str
    revision: str
    commit: str
    info: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class PulledModel:
    """A local snapshot folder of a model repo at one commit."""

    path: Path
    repo_id: str
    revision: str
    commit: str


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
    Returns the version tag and commit; raises ``DatasetSchemaError`` or ``HubError`` leaving the repo as it was.
    Phases timed: ``encode`` (parquet shards), ``upload`` (hashing and sending them), ``commit`` (commit and tag).
    """
    timings: dict[str, float] = {}
    dataset, env, spec, provenance = _dataset_inputs(data, env, spec, provenance)
    api = hub_api(endpoint)
    provenance = {**_pin_sources(api, provenance), **kalm_provenance()}
    with tempfile.TemporaryDirectory(prefix="kalm-publish-") as tmp:
        with timed(timings, "encode"):
            folder = write_rollouts(dataset, Path(tmp) / "dataset", env=env, spec=spec, provenance=provenance)
        info = read_info(folder)
        _create(api, repo_id, "dataset", branch, private)
        free_version(api, repo_id, "dataset", version, bump)  # refuse a taken version before uploading
        with timed(timings, "upload"):
            hashes = preupload_folder(api, repo_id, repo_type="dataset", branch=branch, folder=folder)

        def build(chosen: str, existing: list[str]) -> tuple[list[CommitOperationAdd], Any]:
            card = _dataset_card(repo_id, chosen, info, pretty_name, description, license)
            additions = [*folder_additions(folder, hashes), CommitOperationAdd("README.md", card.encode())]
            return additions, lambda path: path.startswith(("data/", "meta/"))

        with timed(timings, "commit"):
            tag, sha = commit_and_tag(api, repo_id, repo_type="dataset", branch=branch, version=version, bump=bump,
                                      build=build, message=f"Publish {info['totals']['episodes']} {env} rollouts")
    logger.info("published %s %s (%s) on %s", repo_id, tag, sha, api.endpoint)
    return Published(repo_id, "dataset", tag, sha, api.endpoint, timings)


def _dataset_inputs(
    data: datasets.Dataset | str | Path, env: str | None, spec: RolloutSpec | None, provenance: dict[str, Any] | None
) -> tuple[datasets.Dataset, str, RolloutSpec, dict[str, Any]]:
    dataset = data  # type: ignore[assignment]
    if isinstance(data, (str, Path)):
        info = read_info(data)
        dataset = read_rollouts(data)
        env = env or info["env"]
        spec = spec or RolloutSpec.from_dict(info["rollout_spec"])
        provenance = {**info.get("provenance", {}), **(provenance or {})}
    if env is None or spec is None:
        raise DatasetSchemaError("publishing a Dataset needs env= and spec= (the RolloutSpec of its environment)")
    check_features(dataset.features, spec)
    if len(dataset) == 0:
        raise DatasetSchemaError("the dataset has no rollouts: there is nothing to publish")
    return dataset, env, spec, dict(provenance or {})


def _pin_sources(api: Any, provenance: dict[str, Any]) -> dict[str, Any]:
    """Add the commit sha of every source dataset and of the generator model that lacks one."""
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
        pinned["generator_model"] = {**model, "commit": resolve_commit(api, model["repo_id"], model.get("revision"),
                                                                        "model")}
    return pinned


def _dataset_card(
    repo_id: str, version: str, info: dict[str, Any], pretty_name: str | None, description: str, license: str
) -> str:
    totals, spec = info["totals"], info["rollout_spec"]
    pretty = pretty_name or f"KALM {info['env']} rollouts"
    sources = [source["repo_id"] for source in info["provenance"].get("source_datasets") or []]
    imaginary = totals["sources"].get("imaginary", 0) > 0
    fields = {
        "license": json.dumps(license),
        "pretty_name": pretty,
        "pretty_name_yaml": json.dumps(pretty),
        "task_categories": yaml_list(["robotics", "reinforcement-learning"]),
        "tags": yaml_list([*DATASET_TAGS, info["env"], *(["imaginary-rollouts"] if imaginary else [])]),
        "size_category": size_category(totals["episodes"]),
        "source_datasets": yaml_list(sources),
        "description": description or f"{totals['episodes']} rollouts of `{info['env']}` for KALM.",
        "env": info["env"],
        "obs_dim": spec["obs_dim"],
        "action_kind": f"integers in [0, {spec['action_dim']})" if spec["discrete"] else
        f"float32 vectors of length {spec['action_dim']}",
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
    }
    return render_card("dataset", fields)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(counts.items())) or "none"


def _create(api: Any, repo_id: str, repo_type: str, branch: str, private: bool) -> None:
    with hub_errors(repo_id, branch, api.endpoint, f"creating the {repo_type} repo"):
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if branch != "main":
            api.create_branch(repo_id, branch=branch, repo_type=repo_type, exist_ok=True)


def latest_revision(api: Any, repo_id: str, repo_type: str) -> str:
    """The highest ``vMAJOR.MINOR`` tag, or ``main`` when the repo has none."""
    versions = list_versions(api, repo_id, repo_type)
    return versions[-1][0] if versions else "main"


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
    patterns = info.get("data_files", "data/*.parquet")
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    if streaming:
        with hub_errors(repo_id, revision, api.endpoint, "loading the dataset"):
            dataset = datasets.load_dataset(repo_id, revision=sha, split="train", streaming=True,
                                            data_files={"train": patterns})
    else:
        with timed(timings, "download"):
            files = _download_shards(api, repo_id, revision, sha, patterns)
        with timed(timings, "decode"):
            fingerprint = hashlib.sha256(f"{api.endpoint} {repo_id} {sha} {patterns}".encode()).hexdigest()[:32]
            dataset = load_shards(files, fingerprint=fingerprint)
    check_features(dataset.features, RolloutSpec.from_dict(info["rollout_spec"]))
    return PulledDataset(dataset, repo_id, revision, sha, info, timings)


def _download_info(api: Any, repo_id: str, revision: str, sha: str) -> dict[str, Any]:
    """``meta/info.json`` of the dataset at commit ``sha`` (``DatasetSchemaError`` when it has none)."""
    with hub_errors(repo_id, revision, api.endpoint, "downloading meta/info.json"):
        try:
            info_path = hf_hub_download(repo_id, INFO_PATH, repo_type="dataset", revision=sha, endpoint=api.endpoint,
                                        token=api.token)
        except Exception as error:
            if isinstance(error, EntryNotFoundError):
                raise DatasetSchemaError(f"{repo_id!r} at {revision!r} is not a kalm rollout dataset: "
                                         f"{INFO_PATH} is missing") from None
            raise
    return json.loads(Path(info_path).read_text())


def _download_shards(api: Any, repo_id: str, revision: str, sha: str, patterns: list[str]) -> list[Path]:
    """The parquet shards matching ``patterns`` at commit ``sha``, downloaded (in parallel) into the HF cache."""
    with hub_errors(repo_id, revision, api.endpoint, "downloading the shards"):
        folder = Path(snapshot_download(repo_id, repo_type="dataset", revision=sha, allow_patterns=patterns,
                                        endpoint=api.endpoint, token=api.token))
    files = sorted({path for pattern in patterns for path in folder.glob(pattern) if path.is_file()})
    if not files:
        raise DatasetSchemaError(f"{repo_id!r} at {revision!r} has no parquet shards matching {patterns}")
    return files


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
    provenance = {**_pin_sources(api, provenance or {}), **kalm_provenance()}
    provenance_bytes = (json.dumps(provenance, indent=2, sort_keys=True) + "\n").encode()

    def build(chosen: str, existing: list[str]) -> tuple[list[CommitOperationAdd], Any]:
        additions = [*folder_additions(folder, hashes), CommitOperationAdd(MODEL_PROVENANCE, provenance_bytes)]
        if not (folder / "README.md").exists():
            pretty = pretty_name or f"KALM grounded {base_model} for {env}"
            card = render_card("model", {
                "license": json.dumps(license), "pretty_name": pretty, "pretty_name_yaml": json.dumps(pretty),
                "library_name": json.dumps(library_name), "tags": yaml_list(["KALM", "grounding", env]),
                "source_datasets": yaml_list([s["repo_id"] for s in provenance.get("source_datasets") or []]),
                "base_model": json.dumps(base_model), "description": description or pretty, "env": env,
                "version": chosen, "provenance": provenance_markdown(provenance), "repo_id": repo_id})
            additions.append(CommitOperationAdd("README.md", card.encode()))
        return additions, lambda path: path != ".gitattributes"

    timings: dict[str, float] = {}
    _create(api, repo_id, "model", branch, private)
    free_version(api, repo_id, "model", version, bump)  # refuse a taken version before uploading
    with timed(timings, "upload"):
        hashes = preupload_folder(api, repo_id, repo_type="model", branch=branch, folder=folder)
    with timed(timings, "commit"):
        tag, sha = commit_and_tag(api, repo_id, repo_type="model", branch=branch, version=version, bump=bump,
                                  build=build, message=f"Publish model {repo_id}")
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
