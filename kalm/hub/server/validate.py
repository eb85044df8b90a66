"""Errors and name rules of the local Hub server, with the real Hub's statuses and error codes (stdlib only).

The rules (every violation is a 400 with a one-line message):

- repo ids: ``namespace/name``, each 1-96 characters of ``[A-Za-z0-9._-]`` starting and ending with a letter,
  digit or ``_``, without ``--`` or ``..``, and the name not ending in ``.git`` (as ``huggingface_hub``
  validates them);
- refs (branches and tags): ``git check-ref-format`` rules over ``[A-Za-z0-9._/-]`` (no empty, ``.``-led
  or ``.lock``-ending component, no ``..``, no trailing ``.``), not led by ``-``, at most
  :data:`MAX_REF_BYTES`; ``HEAD``, ``refs/...`` and 40-hex names (which would shadow commit ids) are
  reserved, and so is ``main`` for tags;
- paths in a repo: relative, no ``.``/``..``/``.git``/empty segment, no backslash or control character,
  at most :data:`MAX_PATH_BYTES` bytes, :data:`MAX_SEGMENT_BYTES` per segment and :data:`MAX_PATH_DEPTH`
  segments;
- commit titles up to :data:`MAX_TITLE_CHARS` characters, commit and tag messages up to
  :data:`MAX_MESSAGE_BYTES` bytes.
"""

from __future__ import annotations

from typing import Any
import re

NAME_RE = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$")
REF_RE = re.compile(r"^[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*$")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
PULL_RE = re.compile(r"^refs/pr/([1-9][0-9]{0,8})$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_NAME_CHARS = 96
MAX_REF_BYTES = 255
MAX_PATH_BYTES = 1024
MAX_SEGMENT_BYTES = 255
MAX_PATH_DEPTH = 64
MAX_TITLE_CHARS = 1000
MAX_MESSAGE_BYTES = 64 << 10
RESERVED_REFS = {"HEAD"}
RESERVED_TAGS = {"main"}


class StoreError(Exception):
    """A request the store refuses; ``status`` and ``code`` follow the real Hub's answers."""

    def __init__(
        self, status: int, message: str, code: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


def bad_request(message: str) -> StoreError:
    return StoreError(400, message)


def repo_not_found(repo_id: str) -> StoreError:
    return StoreError(404, f"Repository {repo_id!r} not found", "RepoNotFound")


def revision_not_found(repo_id: str, revision: str) -> StoreError:
    return StoreError(404, f"Revision {revision!r} not found in {repo_id!r}", "RevisionNotFound")


def entry_not_found(repo_id: str, path: str) -> StoreError:
    return StoreError(404, f"Entry {path!r} not found in {repo_id!r}", "EntryNotFound")


class RepoDamagedError(StoreError):
    """A repo whose files on disk cannot be trusted; ``what`` says which and how."""

    def __init__(self, repo_id: str, what: str) -> None:
        super().__init__(
            409,
            f"Repository {repo_id!r} is damaged on this server ({what}); "
            "run `kalm hub fsck --repair` on its store",
            "RepoDamaged",
        )
        self.what = what


def repo_damaged(repo_id: str, what: str) -> RepoDamagedError:
    """409 ``RepoDamaged``: not a 5xx, which clients retry for ~23 s although damage does not heal by
    itself."""
    return RepoDamagedError(repo_id, what)


def check_repo_id(repo_id: str) -> tuple[str, str]:
    """Split ``namespace/name`` and check both parts like the real Hub (400 otherwise)."""
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_valid_name(part) for part in parts):
        shown = repo_id if len(repo_id) <= 120 else repo_id[:100] + f"... ({len(repo_id)} characters)"
        raise bad_request(
            f"Invalid repo id {shown!r}: expected namespace/name, each 1-{MAX_NAME_CHARS} "
            "characters of [A-Za-z0-9._-], without '--', '..' or a '.git' suffix"
        )
    return parts[0], parts[1]


def _valid_name(part: str) -> bool:
    return (
        len(part) <= MAX_NAME_CHARS
        and bool(NAME_RE.match(part))
        and ".." not in part
        and "--" not in part
        and not part.endswith(".git")
    )


def check_path(path: str) -> str:
    """Refuse paths that are absolute, escape the repo, name ``.git``, or exceed the length/depth limits
    (400)."""
    parts = path.split("/")
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or CONTROL_RE.search(path)
        or any(part in ("", ".", "..", ".git") for part in parts)
    ):
        raise bad_request(
            f"Invalid path {_short(path)}: paths are relative, without '.', '..', '.git' or empty "
            "parts, backslashes or control characters"
        )
    size = len(path.encode())
    if (
        size > MAX_PATH_BYTES
        or len(parts) > MAX_PATH_DEPTH
        or max(len(p.encode()) for p in parts) > MAX_SEGMENT_BYTES
    ):
        raise bad_request(
            f"Path {_short(path)} is too long ({size} bytes, {len(parts)} parts): at most "
            f"{MAX_PATH_BYTES} bytes, {MAX_PATH_DEPTH} parts of {MAX_SEGMENT_BYTES} bytes"
        )
    return path


def check_ref_name(name: str, *, tag: bool = False) -> str:
    """Refuse branch or tag names that git, or the Hub's reserved names, would refuse (400)."""
    kind = "tag" if tag else "branch"
    components = name.split("/")
    if (
        not REF_RE.match(name)
        or ".." in name
        or name.endswith(".")
        or name.startswith("-")
        or any(part.startswith(".") or part.endswith(".lock") for part in components)
    ):
        raise bad_request(
            f"Invalid {kind} name {_short(name)}: git refuses it (allowed: [A-Za-z0-9._-] and '/', "
            "no component led by '.' or ending in '.lock', no '..', not led by '-' or ending in '.')"
        )
    if len(name.encode()) > MAX_REF_BYTES:
        raise bad_request(f"Invalid {kind} name {_short(name)}: longer than {MAX_REF_BYTES} bytes")
    if (
        name in RESERVED_REFS
        or name.startswith("refs/")
        or COMMIT_RE.match(name)
        or (tag and name in RESERVED_TAGS)
    ):
        raise bad_request(
            f"Invalid {kind} name {name!r}: reserved (HEAD, refs/..., 40-hex commit ids"
            f"{', main' if tag else ''})"
        )
    return name


def check_message(title: str, message: str) -> None:
    """Refuse commit titles and messages beyond the size limits (400)."""
    if len(title) > MAX_TITLE_CHARS:
        raise bad_request(f"Commit title of {len(title)} characters exceeds the limit of {MAX_TITLE_CHARS}")
    if len(message.encode()) > MAX_MESSAGE_BYTES:
        raise bad_request(
            f"Commit message of {len(message.encode())} bytes exceeds the limit of {MAX_MESSAGE_BYTES}"
        )


def _short(text: str) -> str:
    return repr(text) if len(text) <= 120 else repr(text[:100]) + f"... ({len(text)} characters)"
