"""Every client call listed in shared/design/hub.md, through the real clients against the real server."""

from __future__ import annotations

import hashlib
import http.client
import os
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.hub.hub_helpers import raw_request


def test_create_and_delete_repo(api, repo_name):
    url = api.create_repo(repo_name, repo_type="dataset")
    assert url.repo_id == repo_name and url.repo_type == "dataset"
    with pytest.raises(HfHubHTTPError) as conflict:
        api.create_repo(repo_name, repo_type="dataset")
    assert conflict.value.response.status_code == 409
    assert api.create_repo(repo_name, repo_type="dataset", exist_ok=True).repo_id == repo_name
    assert api.repo_exists(repo_name, repo_type="dataset")
    assert not api.repo_exists(repo_name, repo_type="model")  # types are separate namespaces
    api.delete_repo(repo_name, repo_type="dataset")
    assert not api.repo_exists(repo_name, repo_type="dataset")


def test_upload_file_then_download(api, repo_name):
    api.create_repo(repo_name)
    api.upload_file(path_or_fileobj=b"hello hub", path_in_repo="docs/hello.txt", repo_id=repo_name)
    path = hf_hub_download(repo_name, "docs/hello.txt")
    assert Path(path).read_bytes() == b"hello hub"
    assert api.file_exists(repo_name, "docs/hello.txt") and not api.file_exists(repo_name, "nope.txt")


def test_upload_folder_with_multi_mib_binary(api, repo_name, tmp_path):
    big = os.urandom(12 << 20)  # above the 10 MiB LFS threshold: goes through LFS batch + PUT
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "big.bin").write_bytes(big)
    (tmp_path / "notes.txt").write_text("small text file")
    api.create_repo(repo_name, repo_type="dataset")
    info = api.upload_folder(folder_path=tmp_path, repo_id=repo_name, repo_type="dataset")
    api.create_tag(repo_name, tag="v1.0", repo_type="dataset")
    downloaded = hf_hub_download(repo_name, "weights/big.bin", repo_type="dataset", revision="v1.0")
    assert hashlib.sha256(Path(downloaded).read_bytes()).hexdigest() == hashlib.sha256(big).hexdigest()
    files = {
        f.path: f
        for f in api.list_repo_tree(repo_name, repo_type="dataset", recursive=True)
        if hasattr(f, "size")
    }
    assert files["weights/big.bin"].lfs.sha256 == hashlib.sha256(big).hexdigest()
    assert files["notes.txt"].lfs is None
    assert api.dataset_info(repo_name, revision="v1.0").sha == info.oid


def test_create_commit_add_and_delete(api, repo_name):
    api.create_repo(repo_name)
    api.create_commit(
        repo_name,
        [
            CommitOperationAdd("a.txt", b"a"),
            CommitOperationAdd("dir/b.txt", b"b"),
            CommitOperationAdd("dir/c.txt", b"c"),
        ],
        commit_message="three files",
    )
    second = api.create_commit(
        repo_name,
        [CommitOperationDelete("a.txt"), CommitOperationDelete("dir/"), CommitOperationAdd("d.txt", b"d")],
        commit_message="add+delete",
    )
    assert sorted(api.list_repo_files(repo_name)) == [".gitattributes", "d.txt"]
    assert sorted(api.list_repo_files(repo_name, revision=second.oid)) == [".gitattributes", "d.txt"]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("missing.txt", repo_name)


def test_tags_branches_refs_commits(api, repo_name):
    api.create_repo(repo_name, repo_type="dataset")
    first = api.upload_file(
        path_or_fileobj=b"1", path_in_repo="x.txt", repo_id=repo_name, repo_type="dataset"
    )
    api.create_tag(repo_name, tag="v1.0", repo_type="dataset", tag_message="first")
    api.create_branch(repo_name, branch="exp", repo_type="dataset")
    api.upload_file(
        path_or_fileobj=b"2", path_in_repo="x.txt", repo_id=repo_name, repo_type="dataset", revision="exp"
    )
    refs = api.list_repo_refs(repo_name, repo_type="dataset")
    assert {b.name for b in refs.branches} == {"main", "exp"}
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", first.oid)]
    commits = api.list_repo_commits(repo_name, repo_type="dataset", revision="exp")
    assert [c.title for c in commits][-1] == "initial commit" and len(commits) == 3
    assert commits[1].commit_id == first.oid  # newest first
    assert Path(hf_hub_download(repo_name, "x.txt", repo_type="dataset", revision="exp")).read_text() == "2"
    assert Path(hf_hub_download(repo_name, "x.txt", repo_type="dataset", revision="v1.0")).read_text() == "1"
    assert (
        Path(hf_hub_download(repo_name, "x.txt", repo_type="dataset", revision=first.oid)).read_text() == "1"
    )
    with pytest.raises(HfHubHTTPError) as retag:
        api.create_tag(repo_name, tag="v1.0", repo_type="dataset", revision="exp")
    assert retag.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError) as untag:
        api.delete_tag(repo_name, tag="v1.0", repo_type="dataset")
    assert untag.value.response.status_code == 403
    assert api.list_repo_refs(repo_name, repo_type="dataset").tags[0].target_commit == first.oid
    api.delete_branch(repo_name, branch="exp", repo_type="dataset")
    assert {b.name for b in api.list_repo_refs(repo_name, repo_type="dataset").branches} == {"main"}


def test_tree_and_paths_info(api, repo_name):
    api.create_repo(repo_name)
    api.create_commit(
        repo_name,
        [CommitOperationAdd("a/b/c.txt", b"c"), CommitOperationAdd("a/d.txt", b"d")],
        commit_message="nested",
    )
    top = {entry.path for entry in api.list_repo_tree(repo_name)}
    assert top == {".gitattributes", "a"}
    below = {entry.path for entry in api.list_repo_tree(repo_name, path_in_repo="a")}
    assert below == {"a/b", "a/d.txt"}
    everything = {entry.path for entry in api.list_repo_tree(repo_name, recursive=True)}
    assert everything == {".gitattributes", "a", "a/b", "a/b/c.txt", "a/d.txt"}
    infos = api.get_paths_info(repo_name, ["a/d.txt", "a/b", "missing"], expand=True)
    assert [info.path for info in infos] == ["a/d.txt", "a/b"]
    assert infos[0].last_commit.title == "nested"


def test_snapshot_download_by_tag_and_branch(api, repo_name):
    api.create_repo(repo_name)
    api.upload_file(path_or_fileobj=b"one", path_in_repo="f.txt", repo_id=repo_name)
    api.create_tag(repo_name, tag="v1.0")
    api.create_branch(repo_name, branch="dev")
    api.upload_file(path_or_fileobj=b"two", path_in_repo="f.txt", repo_id=repo_name, revision="dev")
    assert (Path(snapshot_download(repo_name, revision="v1.0")) / "f.txt").read_text() == "one"
    assert (Path(snapshot_download(repo_name, revision="dev")) / "f.txt").read_text() == "two"


def test_missing_things_raise_the_real_hub_errors(api, repo_name):
    with pytest.raises(RepositoryNotFoundError):
        api.repo_info("tester/does-not-exist")
    api.create_repo(repo_name)
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_files(repo_name, revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_name, ".gitattributes", revision="v9.9")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_name, "absent.txt")


def test_range_requests_answer_206(hub, api, repo_name):
    api.create_repo(repo_name)
    data = bytes(range(256)) * 4096
    api.upload_file(path_or_fileobj=data, path_in_repo="blob.bin", repo_id=repo_name)
    url = f"{hub.url}/{repo_name}/resolve/main/blob.bin"
    status, headers, body = raw_request("GET", url, headers={"Range": "bytes=10-19"})
    assert status == 206 and body == data[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert raw_request("GET", url, headers={"Range": "bytes=-5"})[2] == data[-5:]
    assert raw_request("GET", url, headers={"Range": f"bytes={len(data)}-"})[0] == 416
    status, headers, body = raw_request("HEAD", url)
    assert status == 200 and headers["X-Repo-Commit"] and int(headers["Content-Length"]) == len(data)
    assert "X-Xet-Hash" not in headers and body == b""


def test_stale_parent_commit_is_refused(api, repo_name):
    api.create_repo(repo_name)
    base = api.repo_info(repo_name).sha
    api.upload_file(path_or_fileobj=b"new", path_in_repo="n.txt", repo_id=repo_name)
    with pytest.raises(HfHubHTTPError) as stale:
        api.create_commit(
            repo_name, [CommitOperationAdd("m.txt", b"m")], commit_message="late", parent_commit=base
        )
    assert stale.value.response.status_code == 412
    assert "m.txt" not in api.list_repo_files(repo_name)


def test_answers_on_a_kept_alive_connection_come_without_delayed_ack_stalls(hub, api, repo_name):
    """A JSON answer's header and body writes leave at once (TCP_NODELAY), not ~40 ms apart (Nagle + delayed
    ACK)."""
    api.create_repo(repo_name)
    split = urlsplit(hub.url)
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
    seconds = []
    try:
        for _ in range(7):
            start = time.perf_counter()
            connection.request("GET", f"/api/models/{repo_name}")
            assert connection.getresponse().read()
            seconds.append(time.perf_counter() - start)
    finally:
        connection.close()
    assert sorted(seconds)[3] < 0.025, seconds
