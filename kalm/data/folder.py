"""A rollout dataset on disk: the same layout locally and in a Hub dataset repo.

```
<dir>/
  data/train-00000-of-00002.parquet   rows per kalm.data.schema (features kept in the parquet metadata)
  data/train-00001-of-00002.parquet
  meta/info.json                      format version, env, rollout spec, features, totals, provenance
  README.md                           dataset card (written by the hub module when publishing)
```

Shards hold at most :data:`SHARD_BYTES` of Arrow data each, so that encoding, hashing, uploading and
decoding run one shard per core. They are written straight from the Arrow table with pyarrow: snappy
pages (cheap on incompressible floats, ~6x smaller on real rollouts), dictionaries only for the
string columns and statistics only for the scalar integer columns (both are wasted work on float lists).
Reading decodes the shards once, in parallel, into an in-memory ``datasets.Dataset`` (the consumers
materialize the columns anyway), instead of converting them into an Arrow cache file first.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
SHARD_BYTES = 64 << 20
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy",
    "use_dictionary": ["env", "source", "level", "goal_id", "instruction"],
    "write_statistics": ["episode_id", "seed", "length"],
}


def rollouts_to_dataset(rows: Iterable[dict[str, Any]], spec: RolloutSpec) -> datasets.Dataset:
    """Build a validated ``datasets.Dataset`` from rollout rows (dicts of the schema's columns)."""
    rows = list(rows)
    for row in rows:
        check_row(row, spec)
    return datasets.Dataset.from_list(rows, features=rollout_features(spec))


def summarize(dataset: datasets.Dataset) -> dict[str, Any]:
    """Totals of a rollout dataset: episodes, transitions, success rate, episodes per level and source."""
    table = dataset.with_format("arrow")[:]  # whole columns at once: no Python object per row
    lengths = table.column("length").to_numpy().astype(np.int64)
    success = table.column("success").to_numpy().astype(bool)
    return {
        "episodes": len(dataset),
        "transitions": int(lengths.sum()),
        "success_rate": float(success.mean()) if len(dataset) else 0.0,
        "mean_length": float(lengths.mean()) if len(dataset) else 0.0,
        "levels": _counts(table.column("level")),
        "sources": _counts(table.column("source")),
    }


def write_rollouts(
    dataset: datasets.Dataset,
    out_dir: str | Path,
    *,
    env: str,
    spec: RolloutSpec,
    provenance: dict[str, Any] | None = None,
    rows_per_shard: int | None = None,
) -> Path:
    """Write ``dataset`` as parquet shards plus ``meta/info.json`` into ``out_dir``.

    Shards hold ``rows_per_shard`` rows each (default: as many as fit in :data:`SHARD_BYTES`). The
    folder is assembled beside ``out_dir`` and moved into place at the end, so an interrupted write
    never leaves a half-written dataset behind. An existing ``out_dir`` is replaced.

    Returns:
        The dataset folder.
    """
    check_features(dataset.features, spec)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        (staging / "data").mkdir()
        _write_shards(dataset, staging / "data", rows_per_shard)
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


def _write_shards(dataset: datasets.Dataset, folder: Path, rows_per_shard: int | None = None) -> None:
    """Write ``dataset`` as equal ``train-XXXXX-of-YYYYY.parquet`` shards into ``folder``, one thread per
    shard."""
    table = dataset.with_format("arrow")[:].replace_schema_metadata(dataset.features.arrow_schema.metadata)
    wanted = (
        math.ceil(table.num_rows / rows_per_shard)
        if rows_per_shard
        else math.ceil(table.nbytes / SHARD_BYTES)
    )
    rows = max(1, math.ceil(table.num_rows / max(1, wanted)))
    count = max(1, math.ceil(table.num_rows / rows))

    def write(index: int) -> None:
        path = folder / f"train-{index:05d}-of-{count:05d}.parquet"
        pq.write_table(table.slice(index * rows, rows), path, **PARQUET_OPTIONS)

    with ThreadPoolExecutor(min(count, os.cpu_count() or 1)) as pool:
        list(pool.map(write, range(count)))


def load_shards(files: Sequence[str | Path], fingerprint: str | None = None) -> datasets.Dataset:
    """Decode parquet shards (in parallel) into an in-memory ``datasets.Dataset``, keeping their ``Features``.

    ``fingerprint`` names the content for the ``datasets`` cache (default: paths, sizes and mtimes).
    """
    paths = [str(file) for file in files]
    table = pq.read_table(paths, memory_map=True)
    return datasets.Dataset(table, fingerprint=fingerprint or _files_fingerprint(paths))


def _files_fingerprint(files: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for file in files:
        stat = os.stat(file)
        digest.update(f"{os.path.abspath(file)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:32]


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
    dataset = load_shards(files)
    check_features(dataset.features, spec)
    return dataset


def _counts(values: pa.ChunkedArray) -> dict[str, int]:
    counted = pc.value_counts(values)
    pairs = zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True)
    return {str(key): int(count) for key, count in sorted(pairs)}
