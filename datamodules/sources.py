"""Where rollout datasets come from: a local dataset folder, or a Hub dataset repo at a revision.

A value that names an existing folder is read as a dataset folder (``kalm collect --out``); a value
that starts with ``.``, ``/`` or ``~`` must be one; anything else is a ``namespace/name`` repo id,
optionally ``namespace/name@revision``, pulled through ``kalm.hub`` and pinned to a commit sha.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import datasets

from kalm.data import read_info, read_rollouts
from kalm.data.folder import DATA_GLOB
from kalm.errors import ConfigError
from kalm.hub.naming import split_revision
from kalm.hub.reference import locate


@dataclass(frozen=True)
class DatasetSource:
    """A rollout dataset: a local folder, or a Hub dataset repo id at ``revision`` (tag, branch or sha).

    Args:
        repo_or_path: a folder written by ``kalm collect`` (``write_rollouts``), or ``namespace/name``.
        revision: Hub revision (default: the repo's latest version tag); must be unset for a folder.
    """

    repo_or_path: str
    revision: str | None = None


@dataclass(frozen=True)
class LoadedSource:
    """A dataset read from a :class:`DatasetSource`, with its ``meta/info.json`` and pinned commit."""

    dataset: Any
    """A ``datasets.Dataset``, or an ``IterableDataset`` when streamed."""
    info: dict[str, Any]
    source: DatasetSource
    commit: str | None

    def provenance(self) -> dict[str, Any]:
        return {
            "repo_or_path": self.source.repo_or_path,
            "revision": self.source.revision,
            "commit": self.commit,
        }


def as_source(value: DatasetSource | str | dict[str, Any]) -> DatasetSource:
    """Normalise a config value (a folder, ``repo[@revision]``, a mapping or a :class:`DatasetSource`)."""
    if isinstance(value, DatasetSource):
        return value
    if isinstance(value, str):
        return DatasetSource(*split_revision(value))
    if isinstance(value, dict) and "repo_or_path" in value:
        return DatasetSource(str(value["repo_or_path"]), value.get("revision"))
    raise ConfigError(
        f"dataset source {value!r} is invalid; expected a folder, a repo id or {{repo_or_path, revision}}"
    )


def load_source(
    source: DatasetSource, *, streaming: bool = False, hub_endpoint: str | None = None
) -> LoadedSource:
    """Read a local folder, or pull a Hub dataset repo at its revision (format and schema checked).

    Raises:
        ConfigError: ``repo_or_path`` is neither an existing folder nor a ``namespace/name`` repo id.
        DatasetSchemaError: the dataset's format version or schema is wrong.
    """
    location = locate(source.repo_or_path, source.revision, what="dataset", hint="collect it first")
    if location.folder is not None:
        path = location.folder
        if source.revision is not None:
            raise ConfigError(f"dataset {source.repo_or_path!r} is a local folder; it takes no revision")
        info = read_info(path)
        if streaming:
            files = sorted(str(file) for file in path.glob(DATA_GLOB))
            dataset: Any = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
        else:
            dataset = read_rollouts(path)
        return LoadedSource(dataset, info, source, None)
    assert location.repo_id is not None
    from kalm.hub.endpoint import ensure_endpoint
    from kalm.hub.datasets import pull_dataset

    pulled = pull_dataset(
        location.repo_id, location.revision, endpoint=ensure_endpoint(hub_endpoint), streaming=streaming
    )
    return LoadedSource(
        pulled.dataset, pulled.info, DatasetSource(location.repo_id, pulled.revision), pulled.commit
    )
