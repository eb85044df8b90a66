"""publish_dataset / pull_dataset / publish_model / pull_model: versions, pinning, validation, cards."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np
import pytest
import yaml
from huggingface_hub import CommitOperationAdd, hf_hub_download

from kalm.data import write_rollouts
from kalm.errors import DatasetSchemaError, HubError
from kalm.hub.datasets import publish_dataset, pull_dataset
from kalm.hub.models import publish_model, pull_model
from tests.hub.hub_helpers import make_rollouts


def test_publish_then_pull_by_version(hub, api, repo_name):
    first, spec = make_rollouts(6, seed=0)
    second, _ = make_rollouts(3, seed=1)
    v1 = publish_dataset(
        first, repo_name, env="fake-v0", spec=spec, provenance={"seed": 0, "config": {"k": 1}}
    )
    v2 = publish_dataset(second, repo_name, env="fake-v0", spec=spec)
    assert (v1.version, v2.version) == ("v1.0", "v1.1") and v1.commit != v2.commit
    assert set(v1.timings) == {"encode", "upload", "commit"}
    pulled = pull_dataset(repo_name, "v1.0")
    assert pulled.commit == v1.commit and len(pulled.dataset) == 6
    assert set(pulled.timings) == {"resolve", "download", "decode"}
    np.testing.assert_array_equal(
        np.asarray(pulled.dataset[2]["observations"], dtype=np.float32),
        np.asarray(first[2]["observations"], dtype=np.float32),
    )
    assert pulled.info["provenance"]["seed"] == 0 and pulled.info["provenance"]["config"] == {"k": 1}
    assert pulled.info["provenance"]["kalm_version"]
    latest = pull_dataset(repo_name)  # default: the highest version tag
    assert (latest.revision, latest.commit, len(latest.dataset)) == ("v1.1", v2.commit, 3)
    files = api.list_repo_files(repo_name, repo_type="dataset", revision="v1.1")
    assert sorted(files) == [
        ".gitattributes",
        "README.md",
        "data/train-00000-of-00001.parquet",
        "meta/info.json",
    ]


def test_sharded_publish_reads_the_same_with_pull_load_dataset_and_streaming(
    hub, api, repo_name, monkeypatch
):
    monkeypatch.setattr("kalm.data.folder.SHARD_BYTES", 600)
    dataset, spec = make_rollouts(7)
    publish_dataset(dataset, repo_name, env="fake-v0", spec=spec)
    shards = [
        path for path in api.list_repo_files(repo_name, repo_type="dataset") if path.startswith("data/")
    ]
    pulled = pull_dataset(repo_name, "v1.0").dataset
    loaded = datasets.load_dataset(repo_name, revision="v1.0", split="train")
    streamed = pull_dataset(repo_name, "v1.0", streaming=True).dataset
    assert len(shards) > 1 and pulled.features == loaded.features == dataset.features
    assert (
        pulled.to_dict()
        == loaded.to_dict()
        == dataset.to_dict()
        == {column: [example[column] for example in streamed] for column in dataset.column_names}
    )


def test_publish_a_folder_and_pin_sources(hub, repo_name, tmp_path):
    source = publish_dataset(make_rollouts(4)[0], repo_name + "-src", env="fake-v0", spec=make_rollouts(1)[1])
    dataset, spec = make_rollouts(5, source="imaginary")
    folder = write_rollouts(
        dataset,
        tmp_path / "ds",
        env="fake-v0",
        spec=spec,
        provenance={"source_datasets": [{"repo_id": source.repo_id, "revision": "v1.0"}]},
    )
    published = publish_dataset(folder, repo_name, version="v2.0")
    assert published.version == "v2.0"
    info = pull_dataset(repo_name, "v2.0").info
    assert info["provenance"]["source_datasets"][0]["commit"] == source.commit
    assert info["totals"]["sources"] == {"imaginary": 5}


def test_card_front_matter(hub, repo_name):
    dataset, spec = make_rollouts(4, source="imaginary")
    publish_dataset(dataset, repo_name, env="fake-v0", spec=spec, pretty_name="Fake: rollouts")
    card = Path(hf_hub_download(repo_name, "README.md", repo_type="dataset", revision="v1.0")).read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["pretty_name"] == "Fake: rollouts" and front["license"] == "apache-2.0"
    assert {"robotics", "reinforcement-learning"} <= set(front["task_categories"])
    assert {"KALM", "offline-rl", "imaginary-rollouts"} <= set(front["tags"])
    assert front["size_categories"] == ["n<1K"]
    assert front["configs"][0]["data_files"][0]["path"] == "data/*.parquet"
    assert f'load_dataset("{repo_name}", revision="v1.0"' in card


def test_failed_publish_leaves_the_repo_unchanged(hub, api, repo_name):
    dataset, spec = make_rollouts(3)
    publish_dataset(dataset, repo_name, env="fake-v0", spec=spec)
    before = api.list_repo_refs(repo_name, repo_type="dataset")
    wrong, _ = make_rollouts(3, obs_dim=7)  # observations of the wrong width for `spec`
    with pytest.raises(DatasetSchemaError, match="observations"):
        publish_dataset(wrong, repo_name, env="fake-v0", spec=spec)
    with pytest.raises(HubError, match="v1.0 .* already exists"):
        publish_dataset(dataset, repo_name, env="fake-v0", spec=spec, version="v1.0")
    assert api.list_repo_refs(repo_name, repo_type="dataset") == before


def test_pull_rejects_unsupported_format_version(hub, api, repo_name):
    dataset, spec = make_rollouts(3)
    publish_dataset(dataset, repo_name, env="fake-v0", spec=spec)
    info = json.loads(Path(hf_hub_download(repo_name, "meta/info.json", repo_type="dataset")).read_text())
    info["codebase_version"] = "2.0"
    api.create_commit(
        repo_name,
        [CommitOperationAdd("meta/info.json", json.dumps(info).encode())],
        commit_message="from the future",
        repo_type="dataset",
    )
    with pytest.raises(DatasetSchemaError, match="'2.0' is not supported"):
        pull_dataset(repo_name, "main")
    assert len(pull_dataset(repo_name, "v1.0").dataset) == 3  # the tagged version still reads


def test_pull_errors_name_repo_revision_and_endpoint(hub, repo_name):
    with pytest.raises(HubError) as missing:
        pull_dataset("tester/never-published", "v1.0")
    assert "tester/never-published" in str(missing.value) and hub.url in str(missing.value)
    publish_dataset(*make_rollouts(2)[:1], repo_name, env="fake-v0", spec=make_rollouts(1)[1])
    with pytest.raises(HubError, match="'v7.0' not found"):
        pull_dataset(repo_name, "v7.0")


def test_publish_and_pull_model(hub, api, repo_name, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=64,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path / "m1")
    first = publish_model(
        tmp_path / "m1", repo_name, env="fake-v0", base_model="tiny-llama", provenance={"seed": 1}
    )
    (tmp_path / "m2").mkdir()
    (tmp_path / "m2" / "config.json").write_text((tmp_path / "m1" / "config.json").read_text())
    second = publish_model(tmp_path / "m2", repo_name)
    assert (first.version, second.version) == ("v1.0", "v1.1")
    pulled = pull_model(repo_name, "v1.0")
    assert pulled.commit == first.commit and (pulled.path / "model.safetensors").is_file()
    assert json.loads((pulled.path / "kalm_provenance.json").read_text())["seed"] == 1
    assert not (pull_model(repo_name).path / "model.safetensors").exists()  # v1.1 holds exactly its folder
    model = LlamaForCausalLM.from_pretrained(repo_name, revision="v1.0")
    assert model.config.hidden_size == 32


def test_an_empty_dataset_is_refused_and_the_repo_stays_absent(hub, api, repo_name):
    dataset, spec = make_rollouts(3)
    with pytest.raises(DatasetSchemaError, match="has no rollouts: there is nothing to publish"):
        publish_dataset(dataset.select([]), repo_name, env="fake-v0", spec=spec)
    assert not api.repo_exists(repo_name, repo_type="dataset")
