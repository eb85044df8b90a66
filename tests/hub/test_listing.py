"""Listing options and repo settings are honoured or refused, never silently ignored."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import BadRequestError, GatedRepoError

from kalm.hub.server.tree import LISTING_FIELDS
from tests.hub.hub_helpers import raw_request

CARD = "---\nlicense: apache-2.0\ntask_categories:\n- {task}\ntags:\n- KALM\n- {tag}\n---\n# card\n"


@pytest.fixture
def owner() -> str:
    """A namespace of its own, so that listings see only this test's repos."""
    return f"lister{uuid.uuid4().hex[:8]}"


def _carded(api: HfApi, repo_id: str, repo_type: str, *, task: str, tag: str) -> None:
    api.create_repo(repo_id, repo_type=repo_type)
    api.upload_file(
        path_or_fileobj=CARD.format(task=task, tag=tag).encode(),
        path_in_repo="README.md",
        repo_id=repo_id,
        repo_type=repo_type,
    )


def test_listing_filters_by_tags_like_the_hub(api, owner):
    _carded(api, f"{owner}/real", "dataset", task="robotics", tag="offline-rl")
    _carded(api, f"{owner}/imaginary", "dataset", task="robotics", tag="imaginary-rollouts")
    _carded(api, f"{owner}/text", "dataset", task="text-generation", tag="offline-rl")
    api.create_repo(f"{owner}/bare", repo_type="dataset")

    def ids(**options) -> list[str]:
        return [d.id.split("/")[1] for d in api.list_datasets(author=owner, **options)]

    assert ids() == ["bare", "imaginary", "real", "text"]
    assert ids(filter="KALM") == ["imaginary", "real", "text"]
    assert ids(filter=["KALM", "offline-rl"]) == ["real", "text"]  # every filter must match
    assert ids(filter="task_categories:robotics") == ["imaginary", "real"]
    assert ids(task_categories="robotics", filter="offline-rl") == ["real"]
    assert ids(filter="license:apache-2.0", search="imag") == ["imaginary"]
    assert ids(filter="no-such-tag") == []
    _carded(api, f"{owner}/policy", "model", task="robotics", tag="offline-rl")
    assert [m.id for m in api.list_models(author=owner, filter="offline-rl")] == [f"{owner}/policy"]
    assert [m.id for m in api.list_models(author=owner, filter="imaginary-rollouts")] == []


def test_full_listings_carry_tags_siblings_and_card_data(api, owner):
    _carded(api, f"{owner}/real", "dataset", task="robotics", tag="offline-rl")
    [default] = api.list_datasets(author=owner)
    assert default.tags == ["KALM", "offline-rl", "license:apache-2.0", "task_categories:robotics"]
    [full] = api.list_datasets(author=owner, full=True)
    assert full.tags == default.tags and full.card_data["license"] == "apache-2.0"
    assert sorted(s.rfilename for s in full.siblings) == [".gitattributes", "README.md"]
    [expanded] = api.list_datasets(author=owner, expand=["tags", "gated"])
    assert expanded.tags == default.tags and expanded.gated is False
    assert api.dataset_info(f"{owner}/real").tags == default.tags
    [raw] = json.loads(raw_request("GET", f"{api.endpoint}/api/datasets?author={owner}&full=true")[2])
    assert set(raw) == LISTING_FIELDS - {"modelId"}  # every field can be asked for with expand


def test_sort_and_limit_are_honoured_and_unknown_options_refused(api, owner):
    for name in ("a", "b", "c"):
        api.create_repo(f"{owner}/{name}", repo_type="dataset")
    assert [d.id[-1] for d in api.list_datasets(author=owner, sort="created_at")] == ["c", "b", "a"]
    assert len(list(api.list_datasets(author=owner, limit=2))) == 2
    with pytest.raises(BadRequestError, match="pipeline_tag not supported"):
        list(api.list_models(author=owner, pipeline_tag="text-generation"))
    with pytest.raises(BadRequestError, match="Cannot expand"):
        list(api.list_datasets(author=owner, expand=["downloadsAllTime"]))


def test_gated_setting_is_kept_reported_and_enforced(server_factory, tmp_path):
    server = server_factory(tmp_path / "store", token="s3cret")
    owner, stranger = HfApi(endpoint=server.url, token="s3cret"), HfApi(endpoint=server.url, token="wrong")
    owner.create_repo("tester/gated", repo_type="dataset")
    owner.upload_file(
        path_or_fileobj=b"data", path_in_repo="f.txt", repo_id="tester/gated", repo_type="dataset"
    )
    owner.create_repo("tester/open", repo_type="dataset")
    owner.update_repo_settings("tester/gated", gated="manual", repo_type="dataset")
    assert owner.dataset_info("tester/gated").gated == "manual"
    assert [d.id for d in owner.list_datasets(author="tester", gated=True)] == ["tester/gated"]
    assert [d.id for d in owner.list_datasets(author="tester", gated=False)] == ["tester/open"]
    assert stranger.dataset_info("tester/gated").gated == "manual"  # the card and listing stay visible
    with pytest.raises(GatedRepoError):
        hf_hub_download(
            "tester/gated",
            "f.txt",
            repo_type="dataset",
            endpoint=server.url,
            token="wrong",
            cache_dir=tmp_path / "stranger",
        )
    path = hf_hub_download(
        "tester/gated",
        "f.txt",
        repo_type="dataset",
        endpoint=server.url,
        token="s3cret",
        cache_dir=tmp_path / "owner",
    )
    assert Path(path).read_bytes() == b"data"
    owner.update_repo_settings("tester/gated", gated=False, repo_type="dataset")
    path = hf_hub_download(
        "tester/gated",
        "f.txt",
        repo_type="dataset",
        endpoint=server.url,
        token="wrong",
        cache_dir=tmp_path / "stranger",
    )
    assert Path(path).read_bytes() == b"data" and owner.dataset_info("tester/gated").gated is False
    owner.update_repo_settings("tester/gated", private=True, repo_type="dataset")
    assert owner.dataset_info("tester/gated").private and not list(
        stranger.list_datasets(author="tester", gated=True)
    )
