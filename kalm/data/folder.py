"""A rollout dataset on disk: the same layout locally and in a Hub dataset repo.

```
<dir>/
  data/train-00000-of-00002.parquet   rows per kalm.data.schema (features kept in the parquet metadata)
  data/train-00001-of-00002.parquet
  meta/info.json                      format version, env, rollout spec, features, totals, provenance
  README.md                           dataset card (written by the hub module when publishing)
```
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import datasets
import numpy as np

import kalm
from kalm.data.schema import (
    FORMAT_VERSION,
    RolloutSpec,
    check_features,
    check_format_version,
    check_row,
    rollout_features,
)
from kalm.errors import DatasetSchemaError

INFO_PATH = "meta/info.json"
DATA_GLOB = "data/*.parquet"
ROWS_PER_SHARD = 50_000


def rollouts_to_dataset(rows: Iterable[dict[str, Any]], spec: RolloutSpec) -> datasets.Dataset:
    """Build a validated ``datasets.Dataset`` from rollout rows (dicts of the schema's columns)."""
    rows = list(rows)
    for row in rows:
        check_row(row, spec)
    return datasets.Dataset.from_list(rows, features=rollout_features(spec))


def summarize(dataset: datasets.Dataset) -> dict[str, Any]:
    """Totals of a rollout dataset: episodes, transitions, success rate, episodes per level and source."""
    lengths = np.asarray(dataset["length"], dtype=np.int64)
    success = np.asarray(dataset["success"], dtype=bool)
    return {
        "episodes": len(dataset),
        "transitions": int(lengths.sum()),
        "success_rate": float(success.mean()) if len(dataset) else 0.0,
        "mean_length": float(lengths.mean()) if len(dataset) else 0.0,
        "levels": _counts(dataset["level"]),
        "sources": _counts(dataset["source"]),
    }


def write_rollouts(
    dataset: datasets.Dataset,
    out_dir: str | Path,
    *,
    env: str,
    spec: RolloutSpec,
    provenance: dict[str, Any] | None = None,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> Path:
    """Write ``dataset`` as parquet shards plus ``meta/info.json`` into ``out_dir``.

    The folder is assembled beside ``out_dir`` and moved into place at the end, so an interrupted
    write never leaves a half-written dataset behind. An existing ``out_dir`` is replaced.

    Returns:
        The dataset folder.
    """
    check_features(dataset.features, spec)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        num_shards = max(1, math.ceil(len(dataset) / rows_per_shard))
        (staging / "data").mkdir()
        for index in range(num_shards):
            shard = dataset.shard(num_shards, index, contiguous=True)
            shard.to_parquet(str(staging / "data" / f"train-{index:05d}-of-{num_shards:05d}.parquet"))
        info = {
            "codebase_version": FORMAT_VERSION,
            "kalm_version": kalm.__version__,
            "env": env,
            "rollout_spec": spec.to_dict(),
            "features": dataset.features.to_dict(),
            "totals": summarize(dataset),
            "data_files": DATA_GLOB,
            "provenance": provenance or {},
        }
        (staging / "meta").mkdir()
        (staging / INFO_PATH).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out_dir


def read_info(folder: str | Path) -> dict[str, Any]:
    """Read and check ``meta/info.json`` of a rollout dataset folder."""
    path = Path(folder) / INFO_PATH
    if not path.is_file():
        raise DatasetSchemaError(f"{folder} is not a kalm rollout dataset: {INFO_PATH} is missing")
    info = json.loads(path.read_text())
    check_format_version(info.get("codebase_version"))
    return info


def read_rollouts(folder: str | Path) -> datasets.Dataset:
    """Load a rollout dataset folder written by :func:`write_rollouts`, checking format and schema."""
    folder = Path(folder)
    info = read_info(folder)
    spec = RolloutSpec.from_dict(info["rollout_spec"])
    files = sorted(str(path) for path in folder.glob(DATA_GLOB))
    if not files:
        raise DatasetSchemaError(f"{folder} has no parquet shards under {DATA_GLOB}")
    dataset = datasets.Dataset.from_parquet(files, features=None)
    check_features(dataset.features, spec)
    return dataset


def _counts(values: list[str]) -> dict[str, int]:
    keys, counts = np.unique(np.asarray(values, dtype=object).astype(str), return_counts=True)
    return {str(key): int(count) for key, count in zip(keys, counts, strict=True)}
