"""commit_and_tag's concurrency rules (one commit on the head it read, retried when the branch moved) and
mirror."""

from __future__ import annotations

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from kalm.errors import HubError
from kalm.hub.commits import commit_and_tag
from kalm.hub.mirror import mirror_repo
from kalm.hub.server.validate import MAX_MESSAGE_BYTES


def _add(api: HfApi, repo_id: str, path: str, data: bytes) -> str:
    return api.create_commit(
        repo_id, [CommitOperationAdd(path, data)], commit_message=f"add {path}", repo_type="dataset"
    ).oid


def test_a_commit_landing_between_read_and_commit_is_kept_and_the_publish_rebuilt(hub, api, repo_name):
    api.create_repo(repo_name, repo_type="dataset")
    seen: list[list[str]] = []

    def build(version: str, existing: list[str]):
        seen.append(sorted(existing))
        if len(seen) == 1:  # another client commits after this publish read the head: its commit gets 412
            _add(api, repo_name, "theirs.txt", b"theirs")
        return [CommitOperationAdd("mine.txt", version.encode())], lambda path: False

    tag, sha = commit_and_tag(
        api,
        repo_name,
        repo_type="dataset",
        branch="main",
        version=None,
        bump="minor",
        build=build,
        message="publish",
    )
    assert len(seen) == 2 and "theirs.txt" not in seen[0] and "theirs.txt" in seen[1]
    assert tag == "v1.0" and api.repo_info(repo_name, repo_type="dataset", revision="v1.0").sha == sha
    assert {"theirs.txt", "mine.txt"} <= set(
        api.list_repo_files(repo_name, repo_type="dataset", revision=sha)
    )


def test_other_commit_failures_are_not_retried(hub, api, repo_name):
    api.create_repo(repo_name, repo_type="dataset")
    calls = []

    def build(version: str, existing: list[str]):
        calls.append(version)
        return [CommitOperationAdd("file.txt", b"x")], lambda path: False

    with pytest.raises(HubError, match="committing failed .*HTTP 4"):
        commit_and_tag(
            api,
            repo_name,
            repo_type="dataset",
            branch="main",
            version=None,
            bump="minor",
            build=build,
            message="x" * (MAX_MESSAGE_BYTES + 1),
        )  # refused by the server (4xx), not a 412
    assert len(calls) == 1 and not api.list_repo_refs(repo_name, repo_type="dataset").tags


def test_mirror_makes_each_tag_hold_exactly_its_snapshot(hub, api, server_factory, repo_name, tmp_path):
    api.create_repo(repo_name, repo_type="dataset")
    _add(api, repo_name, "a.txt", b"a")
    first = _add(api, repo_name, "data/b.bin", b"\0b")
    api.create_tag(repo_name, tag="v1.0", revision=first, repo_type="dataset")
    second = api.create_commit(
        repo_name,
        [CommitOperationDelete("data/b.bin"), CommitOperationAdd("c.txt", b"c")],
        commit_message="replace b by c",
        repo_type="dataset",
    ).oid
    api.create_tag(repo_name, tag="v1.1", revision=second, repo_type="dataset")
    _add(api, repo_name, "d.txt", b"untagged head")
    other = server_factory(tmp_path / "other")
    destination = HfApi(endpoint=other.url, token="x")
    copied = mirror_repo(api, destination, repo_name)
    assert [(tag.tag, tag.source_commit) for tag in copied] == [("v1.0", first), ("v1.1", second)]
    for tag in ("v1.0", "v1.1", "main"):
        assert sorted(destination.list_repo_files(repo_name, repo_type="dataset", revision=tag)) == sorted(
            api.list_repo_files(repo_name, repo_type="dataset", revision=tag)
        ), tag
    assert "data/b.bin" not in destination.list_repo_files(repo_name, repo_type="dataset", revision="v1.1")
    assert mirror_repo(api, destination, repo_name) == []  # re-running sends no tag again
