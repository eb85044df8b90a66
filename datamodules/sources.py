"""Where rollout datasets come from: a Hub dataset repo at a revision, or a local dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from kalm.data import read_info
from kalm.data.folder import DATA_GLOB

LOCAL = "local"


def stream_rollouts(dataset: str, revision: str | None = None) -> tuple[Any, str]:
    """Stream a rollout dataset; return it with the commit sha it is pinned to (``local`` for folders).

    A path to an existing folder is read as a local dataset folder (``kalm collect --out``); anything else
    is a Hub dataset repo id, pulled through ``kalm.hub`` (format version and schema checked there).
    """
    folder = Path(dataset)
    if folder.is_dir():
        read_info(folder)  # checks the format version
        files = sorted(str(path) for path in folder.glob(DATA_GLOB))
        return datasets.load_dataset("parquet", data_files=files, split="train", streaming=True), LOCAL
    from kalm.hub.endpoint import ensure_endpoint
    from kalm.hub.publish import pull_dataset

    ensure_endpoint()
    pulled = pull_dataset(dataset, revision, streaming=True)
    return pulled.dataset, pulled.commit
