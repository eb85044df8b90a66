"""Which versions a repo has on the Hub, which one to read, which one to write next."""

from __future__ import annotations

from huggingface_hub import HfApi

from kalm.errors import HubError
from kalm.hub.errors import hub_errors
from kalm.hub.naming import check_version, is_version, next_version, version_key


def resolve_commit(api: HfApi, repo_id: str, revision: str | None, repo_type: str) -> str:
    """The commit sha a tag, branch or sha points to."""
    with hub_errors(repo_id, revision, api.endpoint, "resolving the revision"):
        return commit_sha(api, repo_id, revision, repo_type)


def commit_sha(api: HfApi, repo_id: str, revision: str | None, repo_type: str) -> str:
    """``repo_info``'s commit sha at ``revision`` (huggingface_hub types it optional; a Hub always sends
    one)."""
    sha = api.repo_info(repo_id, revision=revision, repo_type=repo_type).sha
    if sha is None:
        raise HubError(f"{api.endpoint} named no commit for {repo_id!r} at revision {revision!r}")
    return sha


def list_versions(api: HfApi, repo_id: str, repo_type: str) -> list[tuple[str, str]]:
    """``(tag, commit)`` of every ``vMAJOR.MINOR`` tag, oldest version first."""
    with hub_errors(repo_id, None, api.endpoint, "listing tags"):
        refs = api.list_repo_refs(repo_id, repo_type=repo_type)
    tags = [(tag.name, tag.target_commit) for tag in refs.tags if is_version(tag.name)]
    return sorted(tags, key=lambda item: version_key(item[0]))


def latest_revision(api: HfApi, repo_id: str, repo_type: str) -> str:
    """The highest ``vMAJOR.MINOR`` tag, or ``main`` when the repo has none."""
    versions = list_versions(api, repo_id, repo_type)
    return versions[-1][0] if versions else "main"


def free_version(api: HfApi, repo_id: str, repo_type: str, version: str | None, bump: str) -> str:
    """``version`` if it is free (``HubError`` if taken: tags are immutable), else the next one after the
    highest."""
    tags = [tag for tag, _ in list_versions(api, repo_id, repo_type)]
    chosen = check_version(version) if version else next_version(tags, bump)
    if chosen in tags:
        raise HubError(
            f"version {chosen} of {repo_id!r} on {api.endpoint} already exists; tags are immutable"
        )
    return chosen
