"""A publish as the Hub sees it: large files uploaded ahead, ONE commit on a branch, an immutable version tag.

The repo changes only if the whole commit lands; an uploaded object is invisible until a commit names it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError

from kalm.errors import HubError
from kalm.hub.errors import http_status, hub_errors
from kalm.hub.versions import commit_sha, free_version

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 20
Build = Callable[[str, list[str]], tuple[list[CommitOperationAdd], Callable[[str], bool]]]


@dataclass(frozen=True)
class Published:
    """Where a publish landed: repo, version tag, commit sha and endpoint; seconds per phase."""

    repo_id: str
    repo_type: str
    version: str
    commit: str
    endpoint: str
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def ensure_repo(api: HfApi, repo_id: str, repo_type: str, branch: str, private: bool) -> None:
    """Create the repo (and ``branch``) unless they exist."""
    with hub_errors(repo_id, branch, api.endpoint, f"creating the {repo_type} repo"):
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        if branch != "main":
            api.create_branch(repo_id, branch=branch, repo_type=repo_type, exist_ok=True)


def folder_additions(folder: Path, hashes: dict[str, bytes] | None = None) -> list[CommitOperationAdd]:
    """One add operation per file below ``folder`` (paths relative to it, ``/``-separated).

    ``hashes`` (from :func:`preupload_folder`) are sha256 digests already known, so those files are not read
    again.
    """
    additions = []
    for path in sorted(path for path in folder.rglob("*") if path.is_file()):
        addition = CommitOperationAdd(path.relative_to(folder).as_posix(), str(path))
        if hashes and addition.path_in_repo in hashes:
            addition.upload_info.sha256 = hashes[addition.path_in_repo]
        additions.append(addition)
    return additions


def preupload_folder(
    api: HfApi, repo_id: str, *, repo_type: str, branch: str, folder: Path
) -> dict[str, bytes]:
    """Upload the large (LFS) files of ``folder`` ahead of the commit that will name them, several at a time.

    Returns their sha256 digests, for :func:`folder_additions`. The repo does not change: an uploaded
    object is invisible until a commit refers to it.
    """
    additions = folder_additions(folder)
    with hub_errors(repo_id, branch, api.endpoint, "uploading"):
        api.preupload_lfs_files(
            repo_id, additions=additions, repo_type=repo_type, revision=branch, free_memory=False
        )
    return {
        addition.path_in_repo: addition.upload_info.sha256
        for addition in additions
        if addition.upload_info.is_hashed
    }


def commit_and_tag(
    api: HfApi,
    repo_id: str,
    *,
    repo_type: str,
    branch: str,
    version: str | None,
    bump: str,
    build: Build,
    message: str,
) -> tuple[str, str]:
    """Commit the files ``build(version, existing_paths)`` returns on top of ``branch`` and tag them.

    ``build`` returns the additions and a predicate telling which existing paths to delete. The commit
    names its parent, so a concurrent commit makes it fail (412 Precondition Failed) and it is rebuilt on
    the new head; a concurrent publisher taking the version first (409 on the tag) makes it pick the next
    one (unless ``version`` was given). Returns ``(tag, commit sha)``.
    """
    endpoint = api.endpoint
    for attempt in range(MAX_ATTEMPTS):
        chosen = free_version(api, repo_id, repo_type, version, bump)
        with hub_errors(repo_id, branch, endpoint, "reading the branch"):
            head = commit_sha(api, repo_id, branch, repo_type)
            existing = api.list_repo_files(repo_id, revision=head, repo_type=repo_type)
        additions, doomed = build(chosen, existing)
        added = {op.path_in_repo for op in additions}
        deletions = [CommitOperationDelete(path) for path in existing if path not in added and doomed(path)]
        info = _commit_on(
            api,
            repo_id,
            [*deletions, *additions],
            repo_type=repo_type,
            branch=branch,
            head=head,
            message=f"{message} ({chosen})",
        )
        if info is None:
            logger.info("%s moved during the commit; retrying on the new head", branch)
            time.sleep(0.05 * (attempt + 1))
            continue
        if _tag(
            api, repo_id, chosen, info.oid, repo_type=repo_type, message=message, retry_taken=not version
        ):
            return chosen, info.oid
        logger.info("version %s was taken concurrently; publishing again as the next one", chosen)
    raise HubError(
        f"could not publish to {repo_id!r} on {endpoint}: {MAX_ATTEMPTS} concurrent attempts collided"
    )


def _commit_on(
    api: HfApi,
    repo_id: str,
    operations: list[CommitOperationAdd | CommitOperationDelete],
    *,
    repo_type: str,
    branch: str,
    head: str,
    message: str,
) -> CommitInfo | None:
    """Commit ``operations`` on ``branch`` if its head is still ``head``; ``None`` when it moved (412)."""
    with hub_errors(repo_id, branch, api.endpoint, "committing"):
        try:
            return api.create_commit(
                repo_id,
                operations,
                commit_message=message,
                repo_type=repo_type,
                revision=branch,
                parent_commit=head,
            )
        except HfHubHTTPError as error:
            if http_status(error) == HTTPStatus.PRECONDITION_FAILED:
                return None
            raise


def _tag(
    api: HfApi, repo_id: str, tag: str, sha: str, *, repo_type: str, message: str, retry_taken: bool
) -> bool:
    """Tag ``sha``; ``False`` when ``retry_taken`` and another publisher created the tag first (409)."""
    try:
        api.create_tag(repo_id, tag=tag, revision=sha, repo_type=repo_type, tag_message=message)
    except HfHubHTTPError as error:
        if retry_taken and http_status(error) == HTTPStatus.CONFLICT:
            return False
        with hub_errors(repo_id, sha, api.endpoint, f"tagging {tag}"):
            raise
    return True
