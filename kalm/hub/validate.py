"""Errors and name checks of the local Hub server, with the real Hub's statuses and error codes (stdlib only)."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
REF_RE = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class StoreError(Exception):
    """A request the store refuses; ``status`` and ``code`` follow the real Hub's answers."""

    def __init__(self, status: int, message: str, code: str | None = None, extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


def repo_not_found(repo_id: str) -> StoreError:
    return StoreError(404, f"Repository {repo_id!r} not found", "RepoNotFound")


def revision_not_found(repo_id: str, revision: str) -> StoreError:
    return StoreError(404, f"Revision {revision!r} not found in {repo_id!r}", "RevisionNotFound")


def entry_not_found(repo_id: str, path: str) -> StoreError:
    return StoreError(404, f"Entry {path!r} not found in {repo_id!r}", "EntryNotFound")


def check_repo_id(repo_id: str) -> tuple[str, str]:
    """Split ``namespace/name`` and check both parts like the real Hub (400 otherwise)."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_valid_name(part) for part in parts) or len(parts[1]) > 96:
        raise StoreError(400, f"Invalid repo id {repo_id!r}: expected namespace/name of [A-Za-z0-9._-]")
    return parts[0], parts[1]


def _valid_name(part: str) -> bool:
    return bool(NAME_RE.match(part)) and ".." not in part and "--" not in part


def check_path(path: str) -> str:
    """Refuse absolute paths, ``..``/``.`` segments, empty segments and the ``.git`` folder (400)."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(part in ("", ".", "..", ".git") for part in parts)
    ):
        raise StoreError(400, f"Invalid path {path!r}: paths are relative, without '.', '..' or '.git' parts")
    return path


def check_ref_name(name: str) -> str:
    """Refuse ref names git would refuse (and 40-hex names, which would shadow commit ids)."""
    if not REF_RE.match(name) or ".." in name or name.endswith(".lock") or COMMIT_RE.match(name):
        raise StoreError(400, f"Invalid reference name {name!r}")
    return name
