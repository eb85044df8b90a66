"""Shared client-side helpers: the configured ``HfApi``, error translation, versions, commit-then-tag.

Every call goes through the real ``huggingface_hub`` client, pointed at the endpoint chosen by
:func:`kalm.hub.endpoint.ensure_endpoint`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

import kalm
from kalm.errors import HubError
from kalm.hub.endpoint import Endpoint, active_endpoint

logger = logging.getLogger(__name__)
VERSION_RE = re.compile(r"^v(\d+)\.(\d+)$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
MAX_ATTEMPTS = 20


def hub_api(endpoint: Endpoint | None = None) -> HfApi:
    """An ``HfApi`` for ``endpoint`` (default: the active one)."""
    endpoint = endpoint or active_endpoint()
    return HfApi(endpoint=endpoint.url, token=endpoint.token)


@contextlib.contextmanager
def hub_errors(repo_id: str, revision: str | None, endpoint: str, action: str) -> Iterator[None]:
    """Turn client errors into one-line ``HubError``s naming repo, revision and endpoint."""
    where = f"{repo_id!r} at revision {revision or 'main'!r} on {endpoint}"
    try:
        yield
    except RevisionNotFoundError:
        raise HubError(f"{action}: revision {revision!r} not found in {repo_id!r} on {endpoint}") from None
    except RepositoryNotFoundError:
        raise HubError(f"{action}: repository {repo_id!r} not found on {endpoint}") from None
    except EntryNotFoundError as error:
        raise HubError(f"{action}: a file is missing in {where}: {_first_line(error)}") from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        raise HubError(f"{action} failed for {where} (HTTP {status}): {_first_line(error)}") from None
    except OSError as error:  # connection refused, DNS, ... (httpx errors are not OSError: see below)
        raise HubError(f"{action}: cannot reach {endpoint} for {where}: {error}") from None
    except Exception as error:
        if type(error).__module__.startswith(("httpx", "httpcore")):
            raise HubError(f"{action}: cannot reach {endpoint} for {where}: {error}") from None
        raise


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    server = getattr(error, "server_message", None)
    return (server or text).splitlines()[0] if (server or text) else type(error).__name__


def resolve_commit(api: HfApi, repo_id: str, revision: str | None, repo_type: str) -> str:
    """The commit sha a tag, branch or sha points to."""
    with hub_errors(repo_id, revision, api.endpoint, "resolving the revision"):
        return api.repo_info(repo_id, revision=revision, repo_type=repo_type).sha


def list_versions(api: HfApi, repo_id: str, repo_type: str) -> list[tuple[str, str]]:
    """``(tag, commit)`` of every ``vMAJOR.MINOR`` tag, oldest version first."""
    with hub_errors(repo_id, None, api.endpoint, "listing tags"):
        refs = api.list_repo_refs(repo_id, repo_type=repo_type)
    tags = [(tag.name, tag.target_commit) for tag in refs.tags if VERSION_RE.match(tag.name)]
    return sorted(tags, key=lambda item: _version_key(item[0]))


def _version_key(tag: str) -> tuple[int, int]:
    match = VERSION_RE.match(tag)
    assert match, tag
    return int(match.group(1)), int(match.group(2))


def next_version(tags: list[str], bump: str = "minor") -> str:
    """The next free ``vMAJOR.MINOR``: ``v1.0`` first, then a minor (or major) bump of the highest."""
    versions = sorted(_version_key(tag) for tag in tags if VERSION_RE.match(tag))
    if not versions:
        return "v1.0"
    major, minor = versions[-1]
    return f"v{major + 1}.0" if bump == "major" else f"v{major}.{minor + 1}"


def check_version(version: str) -> str:
    if not VERSION_RE.match(version):
        raise HubError(f"version {version!r} is not of the form vMAJOR.MINOR (e.g. v1.0)")
    return version


def kalm_provenance() -> dict[str, Any]:
    """What every publish records about the software that made it (``publish_id`` makes every commit unique)."""
    return {
        "publish_id": uuid.uuid4().hex,
        "kalm_version": kalm.__version__,
        "kalm_git_sha": _git_sha(Path(kalm.__file__).resolve().parents[1]),
        "huggingface_hub_version": huggingface_hub.__version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _git_sha(folder: Path) -> str | None:
    try:
        result = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def free_version(api: HfApi, repo_id: str, repo_type: str, version: str | None, bump: str) -> str:
    """``version`` if it is free (``HubError`` if taken: tags are immutable), else the next version after the highest."""
    tags = [tag for tag, _ in list_versions(api, repo_id, repo_type)]
    chosen = check_version(version) if version else next_version(tags, bump)
    if chosen in tags:
        raise HubError(f"version {chosen} of {repo_id!r} on {api.endpoint} already exists; tags are immutable")
    return chosen


def commit_and_tag(
    api: HfApi,
    repo_id: str,
    *,
    repo_type: str,
    branch: str,
    version: str | None,
    bump: str,
    build: Callable[[str, list[str]], tuple[list[CommitOperationAdd], Callable[[str], bool]]],
    message: str,
) -> tuple[str, str]:
    """Commit the files ``build(version, existing_paths)`` returns on top of ``branch`` and tag them.

    ``build`` returns the additions and a predicate telling which existing paths to delete. The commit
    names its parent, so a concurrent commit makes it fail (412) and it is rebuilt on the new head; a
    concurrent publisher taking the version first makes it pick the next one (unless ``version`` was
    given). Returns ``(tag, commit sha)``.
    """
    endpoint = api.endpoint
    for attempt in range(MAX_ATTEMPTS):
        chosen = free_version(api, repo_id, repo_type, version, bump)
        with hub_errors(repo_id, branch, endpoint, "reading the branch"):
            head = api.repo_info(repo_id, revision=branch, repo_type=repo_type).sha
            existing = api.list_repo_files(repo_id, revision=head, repo_type=repo_type)
        additions, doomed = build(chosen, existing)
        added = {op.path_in_repo for op in additions}
        deletions = [CommitOperationDelete(path) for path in existing if path not in added and doomed(path)]
        try:
            with hub_errors(repo_id, branch, endpoint, "committing"):
                info = api.create_commit(repo_id, [*deletions, *additions], commit_message=f"{message} ({chosen})",
                                         repo_type=repo_type, revision=branch, parent_commit=head)
        except HubError as error:
            if "HTTP 412" in str(error):
                logger.info("%s moved during the commit; retrying on the new head", branch)
                time.sleep(0.05 * (attempt + 1))
                continue
            raise
        sha = info.oid
        try:
            api.create_tag(repo_id, tag=chosen, revision=sha, repo_type=repo_type, tag_message=message)
        except HfHubHTTPError as error:
            if error.response is not None and error.response.status_code == 409 and not version:
                logger.info("version %s was taken concurrently; publishing again as the next one", chosen)
                continue
            with hub_errors(repo_id, sha, endpoint, f"tagging {chosen}"):
                raise
        return chosen, sha
    raise HubError(f"could not publish to {repo_id!r} on {endpoint}: {MAX_ATTEMPTS} concurrent attempts collided")


def folder_additions(folder: Path, hashes: dict[str, bytes] | None = None) -> list[CommitOperationAdd]:
    """One add operation per file below ``folder`` (paths relative to it, ``/``-separated).

    ``hashes`` (from :func:`preupload_folder`) are sha256 digests already known, so those files are not read again.
    """
    additions = []
    for path in sorted(path for path in folder.rglob("*") if path.is_file()):
        addition = CommitOperationAdd(path.relative_to(folder).as_posix(), str(path))
        if hashes and addition.path_in_repo in hashes:
            addition.upload_info.sha256 = hashes[addition.path_in_repo]
        additions.append(addition)
    return additions


def preupload_folder(api: HfApi, repo_id: str, *, repo_type: str, branch: str, folder: Path) -> dict[str, bytes]:
    """Upload the large (LFS) files of ``folder`` ahead of the commit that will name them, several at a time.

    Returns their sha256 digests, for :func:`folder_additions`. The repo does not change: an uploaded
    object is invisible until a commit refers to it.
    """
    additions = folder_additions(folder)
    with hub_errors(repo_id, branch, api.endpoint, "uploading"):
        api.preupload_lfs_files(repo_id, additions=additions, repo_type=repo_type, revision=branch, free_memory=False)
    return {addition.path_in_repo: addition.upload_info.sha256 for addition in additions
            if addition.upload_info.is_hashed}


@contextlib.contextmanager
def timed(timings: dict[str, float], phase: str) -> Iterator[None]:
    """Add the seconds spent in the block to ``timings[phase]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[phase] = timings.get(phase, 0.0) + time.perf_counter() - start
