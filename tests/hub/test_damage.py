"""A damaged store: one broken repo never breaks the others, and a missing blob is an error, not an empty
200."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from tests.hub.hub_helpers import raw_request


@pytest.fixture
def damaged(server_factory, tmp_path):
    """A server over a store with three datasets, two of them damaged on disk."""
    server = server_factory(tmp_path / "store")
    api = HfApi(endpoint=server.url, token="x")
    for name in ("good", "no-meta", "cut-refs", "bad-commit"):
        api.create_repo(f"tester/{name}", repo_type="dataset")
    repos = tmp_path / "store" / "repos" / "datasets" / "tester"
    (repos / "no-meta" / "repo.json").unlink()
    refs = repos / "cut-refs" / "refs.json"
    refs.write_bytes(refs.read_bytes()[:20])
    head = json.loads((repos / "bad-commit" / "refs.json").read_text())["branches"]["main"]
    (repos / "bad-commit" / "objects" / f"{head}.json").write_text("[]")
    return server, api


def test_listing_skips_damaged_repos_and_logs_them(damaged):
    server, api = damaged
    start = time.perf_counter()
    assert [d.id for d in api.list_datasets()] == ["tester/good"]
    assert [d.id for d in api.list_datasets(full=True)] == ["tester/good"]
    assert time.perf_counter() - start < 5  # no retries of a 500
    log = (server.root / "server.log").read_text()
    assert all(
        f"listing skips dataset tester/{name}" in log for name in ("no-meta", "cut-refs", "bad-commit")
    )


@pytest.mark.parametrize(
    "name, what",
    [
        ("no-meta", "repo.json is missing"),
        ("cut-refs", "refs.json is unreadable"),
        ("bad-commit", "is unreadable"),
    ],
)
def test_a_damaged_repo_answers_its_own_calls_with_a_clear_error(damaged, name, what):
    server, api = damaged
    start = time.perf_counter()
    with pytest.raises(HfHubHTTPError) as error:
        api.dataset_info(f"tester/{name}")
    assert error.value.response.status_code == 409
    assert what in str(error.value) and "kalm hub fsck --repair" in str(error.value)
    with pytest.raises(LocalEntryNotFoundError) as download:  # hf_hub_download's wrapper of a failed HEAD
        hf_hub_download(f"tester/{name}", ".gitattributes", repo_type="dataset", endpoint=server.url)
    assert download.value.__cause__.response.status_code == 409 and what in str(download.value.__cause__)
    assert time.perf_counter() - start < 5
    assert api.dataset_info("tester/good").id == "tester/good"


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_missing_blob_gets_an_error_status_before_any_header(hub, api, repo_name, hub_server, damage):
    api.create_repo(repo_name)
    data = f"content for {repo_name} {damage}".encode()
    api.upload_file(path_or_fileobj=data, path_in_repo="f.txt", repo_id=repo_name)
    blob = (
        hub_server.root
        / "blobs"
        / "sha256"
        / hashlib.sha256(data).hexdigest()[:2]
        / hashlib.sha256(data).hexdigest()
    )
    blob.unlink()
    if damage == "truncated":
        blob.write_bytes(data[:3])
    url = f"{hub.url}/{repo_name}/resolve/main/f.txt"
    status, headers, body = raw_request("GET", url)
    assert status == 409 and headers["X-Error-Code"] == "RepoDamaged"
    assert "f.txt" in json.loads(body)["error"] and int(headers["Content-Length"]) == len(body)
    status, headers, body = raw_request("HEAD", url)
    assert status == 409 and body == b""
    with pytest.raises(LocalEntryNotFoundError) as download:  # hf_hub_download's wrapper of a failed HEAD
        hf_hub_download(repo_name, "f.txt")
    assert "missing or truncated" in str(download.value.__cause__)
    blob.unlink(missing_ok=True)
    blob.write_bytes(data)  # the server's answer follows the store: restored, it serves again
    assert raw_request("GET", url)[2] == data
