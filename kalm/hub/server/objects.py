"""The immutable records of the local Hub store and how they reach the disk (stdlib and filelock).

A commit object is ``{"id", "parents", "title", "message", "authors", "date", "files", "nonce"}`` where
``files`` maps every path of the snapshot to ``{"sha256", "size", "lfs", "oid"}`` (``oid`` is the git
object id of the file, or of its LFS pointer when ``lfs``). The commit id is the sha1 of the canonical
JSON (:func:`dump`) of the object without its ``id``, so :func:`commit_id` can verify any stored object.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from kalm.hub.server.blobs import git_blob_oid, lfs_pointer


def now_iso() -> str:
    """The current UTC time in the Hub's format (milliseconds, ``Z``)."""
    seconds = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"


@dataclass(frozen=True)
class FileEntry:
    """One file of a snapshot."""

    sha256: str
    size: int
    lfs: bool
    oid: str

    @classmethod
    def regular(cls, sha256: str, data: bytes) -> FileEntry:
        return cls(sha256=sha256, size=len(data), lfs=False, oid=git_blob_oid(data))

    @classmethod
    def large(cls, sha256: str, size: int) -> FileEntry:
        return cls(sha256=sha256, size=size, lfs=True, oid=git_blob_oid(lfs_pointer(sha256, size)))

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "lfs": self.lfs, "oid": self.oid}


@dataclass(frozen=True)
class Operation:
    """One change of a commit: ``add`` (with ``entry``), ``delete`` a file, or ``delete_folder``."""

    kind: str
    path: str
    entry: FileEntry | None = None


@dataclass(frozen=True)
class Commit:
    """An immutable snapshot with its metadata."""

    id: str
    parents: tuple[str, ...]
    title: str
    message: str
    authors: tuple[str, ...]
    date: str
    files: dict[str, FileEntry]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Commit:
        """Build a commit from its stored JSON; ``ValueError`` if the shape is not a commit's."""
        try:
            files = {str(path): FileEntry(**entry) for path, entry in data["files"].items()}
            commit = cls(
                id=data["id"],
                parents=tuple(data["parents"]),
                title=data["title"],
                message=data["message"],
                authors=tuple(data["authors"]),
                date=data["date"],
                files=files,
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"not a commit object ({type(error).__name__}: {error})") from None
        if not isinstance(commit.id, str) or not all(isinstance(p, str) for p in commit.parents):
            raise ValueError("not a commit object (id or parents are not strings)")
        return commit


def commit_id(body: dict[str, Any]) -> str:
    """The id a commit object must have: the sha1 of its canonical JSON without ``id``."""
    return hashlib.sha1(dump({key: value for key, value in body.items() if key != "id"})).hexdigest()


def dump(data: Any) -> bytes:
    """The canonical JSON of the store's files."""
    return json.dumps(data, indent=1, sort_keys=True).encode()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new content, never a mix (fsynced)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """Hold the lock of one repo against other threads and other processes (``flock`` through ``filelock``).

    ``filelock`` waits by polling, so the threads of one server queued on a busy repo would idle after every
    release (``bench/hub_load.py``, 20-way commits: about a fifth of the commits per second); a thread lock
    per path in front hands the repo to the next thread at once, and ``filelock`` only ever waits for
    another process. The lock file stays in place.
    """
    thread_lock, file_lock = _locks(str(lock_path))
    with thread_lock, file_lock:
        yield


@functools.cache
def _locks(path: str) -> tuple[threading.Lock, FileLock]:
    """One pair per path, made once (building a ``FileLock`` costs about as much as acquiring it).

    The thread lock admits one thread at a time, so the file lock need not be thread-local. Should a race at
    first use make two pairs, their file locks still exclude each other (separate descriptors).
    """
    return threading.Lock(), FileLock(path, thread_local=False)
