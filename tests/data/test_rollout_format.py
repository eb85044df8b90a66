import json

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest

from kalm.data import (
    FORMAT_VERSION,
    RolloutSpec,
    read_rollouts,
    rollouts_to_dataset,
    summarize,
    write_rollouts,
)
from kalm.errors import DatasetSchemaError

SPEC = RolloutSpec(obs_dim=10, action_dim=40, discrete=True, horizon=50)


def row(index=0, length=3, **overrides):
    rng = np.random.default_rng(index)
    data = {
        "episode_id": index,
        "env": "clevr",
        "source": "real",
        "level": "train",
        "goal_id": "red-left-of-blue",
        "instruction": "Push the red ball to the left of the blue ball",
        "seed": 100 + index,
        "length": length,
        "observations": rng.normal(size=(length + 1, 10)).astype(np.float32),
        "actions": rng.integers(40, size=length),
        "rewards": rng.normal(size=length).astype(np.float32),
        "terminated": True,
        "truncated": False,
        "success": True,
    }
    return {**data, **overrides}


def test_round_trip_keeps_values_and_float32(tmp_path):
    rows = [row(i, length=i + 1) for i in range(7)]
    folder = write_rollouts(
        rollouts_to_dataset(rows, SPEC),
        tmp_path / "ds",
        env="clevr",
        spec=SPEC,
        provenance={"seed": 1},
        rows_per_shard=3,
    )
    assert len(list((folder / "data").glob("*.parquet"))) == 3
    loaded = read_rollouts(folder).with_format("numpy")
    for original, back in zip(rows, loaded, strict=True):
        assert back["observations"].dtype == np.float32
        np.testing.assert_array_equal(back["observations"], original["observations"])
        np.testing.assert_array_equal(back["actions"], original["actions"])
        np.testing.assert_array_equal(back["rewards"], original["rewards"])
    info = json.loads((folder / "meta/info.json").read_text())
    assert info["codebase_version"] == FORMAT_VERSION
    assert info["totals"]["episodes"] == 7 and info["totals"]["transitions"] == sum(range(1, 8))
    assert info["provenance"] == {"seed": 1}


def test_shards_are_cut_by_size_and_read_back_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr("kalm.data.folder.SHARD_BYTES", 1100)
    rows = [row(i, length=5) for i in range(9)]
    dataset = rollouts_to_dataset(rows, SPEC).select([8, 7, 6, 5, 4, 3, 2, 1, 0])  # an indices mapping too
    folder = write_rollouts(dataset, tmp_path / "ds", env="clevr", spec=SPEC)
    shards = sorted((folder / "data").glob("*.parquet"))
    sizes = [pq.read_metadata(shard).num_rows for shard in shards]
    assert len(shards) > 1 and sum(sizes) == 9 and max(sizes) - min(sizes) <= 1 and min(sizes) > 0
    assert all(shard.name.endswith(f"-of-{len(shards):05d}.parquet") for shard in shards)
    loaded = read_rollouts(folder)
    assert loaded.features == dataset.features and loaded["episode_id"][:] == list(range(8, -1, -1))
    np.testing.assert_array_equal(loaded.with_format("numpy")[0]["observations"], rows[8]["observations"])


def test_continuous_actions_are_float32_matrices(tmp_path):
    spec = RolloutSpec(obs_dim=91, action_dim=4, discrete=False, horizon=100)
    rows = [
        row(
            0,
            observations=np.zeros((3, 91), np.float32),
            length=2,
            actions=np.ones((2, 4), np.float32),
            rewards=np.zeros(2, np.float32),
        )
    ]
    folder = write_rollouts(rollouts_to_dataset(rows, spec), tmp_path / "mw", env="metaworld", spec=spec)
    back = read_rollouts(folder).with_format("numpy")[0]
    assert back["actions"].shape == (2, 4) and back["actions"].dtype == np.float32


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"observations": np.zeros((4, 9), np.float32)},
            r"observations have shape \(4, 9\); expected \(4, 10\)",
        ),
        ({"actions": np.array([1, 2])}, r"actions have shape \(2,\); expected \(3,\)"),
        ({"actions": np.array([1, 2, 40])}, r"actions outside \[0, 40\)"),
        ({"source": "dreamed"}, "source 'dreamed'; expected one of"),
    ],
)
def test_bad_rows_are_rejected_with_the_reason(overrides, message):
    with pytest.raises(DatasetSchemaError, match=message):
        rollouts_to_dataset([row(**overrides)], SPEC)


def test_missing_or_mistyped_column_is_named(tmp_path):
    dataset = rollouts_to_dataset([row()], SPEC)
    with pytest.raises(DatasetSchemaError, match="no column 'success'"):
        write_rollouts(dataset.remove_columns("success"), tmp_path / "a", env="clevr", spec=SPEC)
    float64 = dataset.cast_column("observations", datasets.Array2D(shape=(None, 10), dtype="float64"))
    with pytest.raises(
        DatasetSchemaError,
        match=r"column 'observations' is Array2D\(shape=\(None, 10\), "
        r"dtype=float64\); expected .*float32",
    ):
        write_rollouts(float64, tmp_path / "b", env="clevr", spec=SPEC)


def test_unsupported_format_version_is_rejected(tmp_path):
    folder = write_rollouts(rollouts_to_dataset([row()], SPEC), tmp_path / "ds", env="clevr", spec=SPEC)
    info_path = folder / "meta/info.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "codebase_version": "2.0"}))
    with pytest.raises(
        DatasetSchemaError, match="format version '2.0' is not supported; this kalm reads 1.x"
    ):
        read_rollouts(folder)


def test_not_a_dataset_folder(tmp_path):
    with pytest.raises(DatasetSchemaError, match="meta/info.json is missing"):
        read_rollouts(tmp_path)


def test_summary_counts():
    dataset = rollouts_to_dataset([row(0, length=2), row(1, length=4, success=False, level="easy")], SPEC)
    summary = summarize(dataset)
    assert summary["transitions"] == 6 and summary["success_rate"] == 0.5
    assert summary["levels"] == {"easy": 1, "train": 1}
