"""Throughput of the local hub: publish and pull a ~100 MB rollout dataset, against a plain file copy.

    .venv/bin/python bench/hub_throughput.py [--mb 100] [--repeats 3]

Everything (store, HF caches, the copy baseline) lives in one temporary folder on the same disk. The
server runs in a child process, as ``ensure_endpoint`` starts it. Rows:

- ``file copy``: ``shutil.copyfile`` of the dataset's files (the baseline, ratio 1; in-kernel, page cache);
- ``file copy + fsync``: the same, made durable (the store fsyncs every blob it accepts);
- ``upload_folder`` / ``snapshot_download``: the same bytes through the real client and the server
  (sha256 on both sides, Git LFS batch + PUT, fsync on the server; download into the HF cache);
- ``publish_dataset`` / ``pull_dataset``: kalm's end to end calls (validation, parquet re-encoding,
  card, commit + tag; pull resolves, checks the version and loads through ``datasets``).

MB/s counts the dataset's bytes on disk; ratio = MB/s divided by the copy's MB/s. Best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

OBS_DIM, ACTION_DIM, LENGTH = 39, 4, 500  # Meta-World shapes


def make_dataset(megabytes: float):
    """A float32 rollout dataset of about ``megabytes`` MB (random, so parquet cannot compress it)."""
    import datasets

    from kalm.data import RolloutSpec, rollout_features

    spec = RolloutSpec(obs_dim=OBS_DIM, action_dim=ACTION_DIM, discrete=False, horizon=LENGTH)
    per_episode = ((LENGTH + 1) * OBS_DIM + LENGTH * ACTION_DIM + LENGTH) * 4
    episodes = max(1, int(megabytes * 1e6 / per_episode))
    rng = np.random.default_rng(0)
    columns = {
        "episode_id": list(range(episodes)), "env": ["bench-v0"] * episodes, "source": ["real"] * episodes,
        "level": ["train"] * episodes, "goal_id": ["g"] * episodes, "instruction": ["reach the goal"] * episodes,
        "seed": [0] * episodes, "length": [LENGTH] * episodes,
        "observations": list(rng.normal(size=(episodes, LENGTH + 1, OBS_DIM)).astype(np.float32)),
        "actions": list(rng.uniform(-1, 1, size=(episodes, LENGTH, ACTION_DIM)).astype(np.float32)),
        "rewards": list(rng.random((episodes, LENGTH)).astype(np.float32)),
        "terminated": [False] * episodes, "truncated": [True] * episodes, "success": [False] * episodes,
    }
    return datasets.Dataset.from_dict(columns, features=rollout_features(spec)), spec


def best_of(repeats: int, run: Callable[[int], None]) -> float:
    times = []
    for attempt in range(repeats):
        start = time.perf_counter()
        run(attempt)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="dataset size in MB")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kalm-hub-bench-"))
    try:
        run(work, args.mb, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path, megabytes: float, repeats: int) -> None:
    from kalm.hub.endpoint import configure, start_local_server, use_cache_home

    use_cache_home(work / "hf")
    server = start_local_server(work / "store")
    endpoint = configure(server.url, server.token, local=True)
    from huggingface_hub import HfApi, snapshot_download

    from kalm.data import write_rollouts
    from kalm.hub.publish import publish_dataset, pull_dataset

    dataset, spec = make_dataset(megabytes)
    folder = write_rollouts(dataset, work / "dataset", env="bench-v0", spec=spec)
    files = [path for path in folder.rglob("*") if path.is_file()]
    size_mb = sum(path.stat().st_size for path in files) / 1e6
    api = HfApi(endpoint=endpoint.url, token=endpoint.token)

    def copy(attempt: int) -> None:
        target = work / f"copy-{attempt}"
        for path in files:
            (target / path.relative_to(folder)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target / path.relative_to(folder))

    def durable_copy(attempt: int) -> None:
        copy(attempt + repeats)
        for path in (work / f"copy-{attempt + repeats}").rglob("*"):
            if path.is_file():
                descriptor = os.open(path, os.O_RDONLY)
                os.fsync(descriptor)
                os.close(descriptor)

    def upload(attempt: int) -> None:
        api.create_repo(f"bench/raw-{attempt}", repo_type="dataset")
        api.upload_folder(folder_path=folder, repo_id=f"bench/raw-{attempt}", repo_type="dataset")

    def download(attempt: int) -> None:
        snapshot_download(f"bench/raw-{attempt}", repo_type="dataset", endpoint=endpoint.url,
                          cache_dir=work / f"dl-{attempt}")

    def publish(attempt: int) -> None:
        publish_dataset(dataset, f"bench/published-{attempt}", env="bench-v0", spec=spec)

    def pull(attempt: int) -> None:
        use_cache_home(work / f"hf-pull-{attempt}")  # a cold cache each time
        assert len(pull_dataset(f"bench/published-{attempt}", "v1.0").dataset) == len(dataset)

    rows = [("file copy (baseline)", best_of(repeats, copy))]
    for name, step in (("file copy + fsync", durable_copy), ("upload_folder", upload), ("snapshot_download", download),
                       ("publish_dataset", publish), ("pull_dataset", pull)):
        rows.append((name, best_of(repeats, step)))
    server.stop()
    baseline = size_mb / rows[0][1]
    print(f"dataset: {len(dataset)} rollouts, {size_mb:.1f} MB in {len(files)} files; best of {repeats}; "
          f"{os.cpu_count()} cores")
    print(f"{'operation':<22}{'seconds':>10}{'MB/s':>10}{'ratio vs copy':>16}")
    for name, seconds in rows:
        rate = size_mb / seconds
        print(f"{name:<22}{seconds:>10.3f}{rate:>10.1f}{rate / baseline:>16.2f}")


if __name__ == "__main__":
    main()
