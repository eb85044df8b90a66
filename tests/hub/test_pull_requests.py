"""Pull requests (`refs/pr/N`): `create_pr=True` never moves the base branch, and the PR is a real
revision."""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, hf_hub_download
from huggingface_hub.errors import BadRequestError, RevisionNotFoundError

from tests.hub.hub_helpers import make_rollouts


def test_upload_with_create_pr_opens_a_pull_request_and_leaves_main(api, repo_name):
    api.create_repo(repo_name)
    main = api.upload_file(path_or_fileobj=b"main", path_in_repo="f.txt", repo_id=repo_name).oid
    first = api.upload_file(
        path_or_fileobj=b"proposal", path_in_repo="f.txt", repo_id=repo_name, create_pr=True
    )
    assert first.pr_revision == "refs/pr/1" and first.pr_url.endswith(f"{repo_name}/discussions/1")
    assert api.repo_info(repo_name).sha == main
    assert Path(hf_hub_download(repo_name, "f.txt")).read_text() == "main"
    assert Path(hf_hub_download(repo_name, "f.txt", revision=first.pr_revision)).read_text() == "proposal"
    more = api.create_commit(
        repo_name,
        [CommitOperationAdd("g.txt", b"more")],
        commit_message="extend the PR",
        revision="refs/pr/1",
    )  # a commit to the PR ref extends the PR
    second = api.upload_file(
        path_or_fileobj=b"other", path_in_repo="h.txt", repo_id=repo_name, create_pr=True
    )
    assert second.pr_revision == "refs/pr/2"
    refs = api.list_repo_refs(repo_name, include_pull_requests=True)
    assert [(pr.ref, pr.target_commit) for pr in refs.pull_requests] == [
        ("refs/pr/1", more.oid),
        ("refs/pr/2", second.oid),
    ]
    assert api.list_repo_refs(repo_name).pull_requests is None
    assert set(api.list_repo_files(repo_name, revision="refs/pr/1")) == {".gitattributes", "f.txt", "g.txt"}
    assert [c.commit_id for c in api.list_repo_commits(repo_name, revision="refs/pr/1")][:2] == [
        more.oid,
        first.oid,
    ]
    assert api.repo_info(repo_name).sha == main and api.list_repo_files(repo_name) == [
        ".gitattributes",
        "f.txt",
    ]


def test_a_pull_request_is_opened_against_a_branch_only(api, repo_name):
    api.create_repo(repo_name)
    api.create_tag(repo_name, tag="v1.0")
    with pytest.raises(RevisionNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name, revision="refs/pr/1")
    api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_name, create_pr=True)
    with pytest.raises(BadRequestError, match="against a branch"):
        api.upload_file(
            path_or_fileobj=b"y",
            path_in_repo="y.txt",
            repo_id=repo_name,
            revision="refs/pr/1",
            create_pr=True,
        )
    with pytest.raises(BadRequestError, match="not a branch"):
        api.upload_file(path_or_fileobj=b"z", path_in_repo="z.txt", repo_id=repo_name, revision="v1.0")


def test_dataset_push_to_hub_with_create_pr_and_load_from_the_pr(hub, api, repo_name):
    import datasets

    dataset, _ = make_rollouts(4)
    dataset.push_to_hub(repo_name)
    main = api.dataset_info(repo_name).sha
    changed = make_rollouts(6, seed=1)[0]
    pushed = changed.push_to_hub(repo_name, create_pr=True)
    assert pushed.pr_revision == "refs/pr/1" and api.dataset_info(repo_name).sha == main
    assert len(datasets.load_dataset(repo_name, split="train")) == 4
    assert len(datasets.load_dataset(repo_name, revision=pushed.pr_revision, split="train")) == 6
