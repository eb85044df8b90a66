"""The on-disk store of the local Hub server: repos, commits, branches and tags (stdlib only).

On-disk format (version 1; ``<root>/FORMAT`` holds ``kalm-hub-store 1``)::

    <root>/
      FORMAT
      blobs/sha256/<aa>/<sha256>           file contents, content-addressed, read-only (see kalm.hub.blobs)
      tmp/                                 uploads and repos being assembled; leftovers are safe to delete
      repos/<models|datasets>/<namespace>/<name>/
        repo.json                          {"id", "type", "private", "created_at"}
        objects/<commit id>.json           immutable commit objects (see below)
        refs.json                          {"branches": {name: commit id},
                                            "tags": {name: {"target": commit id, "message", "date"}}}
        lock                               flock target that serialises writers of this repo

A commit object is ``{"id", "parents", "title", "message", "authors", "date", "files"}`` where ``files``
maps every path of the snapshot to ``{"sha256", "size", "lfs", "oid"}`` (``oid`` is the git object id of
the file, or of its LFS pointer when ``lfs``). The commit id is the sha1 of the canonical JSON of the
object without its ``id``.

Atomicity: blobs and commit objects are written (and fsynced) before the commit becomes visible, and it
becomes visible only when ``refs.json`` is replaced with ``os.replace`` while the repo's lock is held
(a ``threading.Lock`` per repo plus ``fcntl.flock``, so several server processes may share a root). A
crash at any point leaves the previous ``refs.json``, hence the previous revision, intact. Writers
always apply their operations to the branch head read under the lock, so concurrent commits are
rebased and never lost; a commit that names a ``parentCommit`` other than the head is refused (412).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kalm.hub.blobs import BlobStore, git_blob_oid, lfs_pointer
from kalm.hub.validate import (
    COMMIT_RE,
    StoreError,
    check_path,
    check_ref_name,
    check_repo_id,
    entry_not_found,
    repo_not_found,
    revision_not_found,
)

FORMAT = "kalm-hub-store 1"
REPO_TYPES = ("model", "dataset")
RESERVED_NAMESPACES = {"api", "datasets", "models", "spaces", "lfs", "buckets", "kernels", "docs", "new"}
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


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
        files = {path: FileEntry(**entry) for path, entry in data["files"].items()}
        return cls(
            id=data["id"],
            parents=tuple(data["parents"]),
            title=data["title"],
            message=data["message"],
            authors=tuple(data["authors"]),
            date=data["date"],
            files=files,
        )


def _write_atomic(path: Path, data: bytes) -> None:
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


def _dump(data: Any) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode()


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(str(lock_path), threading.Lock())
    with thread_lock, open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Repo:
    """One repo folder: read snapshots, resolve revisions, and change refs under the repo lock."""

    def __init__(self, path: Path, repo_type: str, repo_id: str, blobs: BlobStore) -> None:
        self.path, self.type, self.id, self.blobs = path, repo_type, repo_id, blobs

    @property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "repo.json").read_text())

    def refs(self) -> dict[str, Any]:
        return json.loads((self.path / "refs.json").read_text())

    def commit(self, commit_id: str) -> Commit:
        try:
            return Commit.from_dict(json.loads((self.path / "objects" / f"{commit_id}.json").read_text()))
        except FileNotFoundError:
            raise revision_not_found(self.id, commit_id) from None

    def resolve(self, revision: str) -> str:
        """The commit id a branch, tag, ``refs/heads|tags/...`` name or commit id points to (404 otherwise)."""
        refs = self.refs()
        for prefix, kind in (("refs/heads/", "branches"), ("refs/tags/", "tags"), ("", None)):
            if not revision.startswith(prefix):
                continue
            name = revision[len(prefix) :]
            if kind in (None, "branches") and name in refs["branches"]:
                return refs["branches"][name]
            if kind in (None, "tags") and name in refs["tags"]:
                return refs["tags"][name]["target"]
        if COMMIT_RE.match(revision) and (self.path / "objects" / f"{revision}.json").is_file():
            return revision
        raise revision_not_found(self.id, revision)

    def snapshot(self, revision: str) -> Commit:
        return self.commit(self.resolve(revision))

    def history(self, revision: str) -> list[Commit]:
        """Commits reachable from ``revision`` by first parents, newest first."""
        commits = [self.snapshot(revision)]
        while commits[-1].parents:
            commits.append(self.commit(commits[-1].parents[0]))
        return commits

    def apply(
        self,
        branch: str,
        operations: list[Operation],
        *,
        title: str,
        message: str = "",
        author: str = "local",
        parent: str | None = None,
    ) -> Commit:
        """Commit ``operations`` on top of ``branch``'s current head and move the branch (atomic)."""
        with _locked(self.path / "lock"):
            refs = self.refs()
            if branch not in refs["branches"]:
                raise revision_not_found(self.id, branch)
            head = refs["branches"][branch]
            if parent is not None and parent != head:
                raise StoreError(412, f"A commit has happened since {parent} on {branch!r} of {self.id!r}; "
                                 f"the head is now {head}. Please refresh and try again.")
            files = dict(self.commit(head).files)
            for operation in operations:
                self._apply_one(files, operation)
            _check_no_file_dir_clash(files)
            new = self._write_commit(files, parents=(head,), title=title, message=message, author=author)
            refs["branches"][branch] = new.id
            _write_atomic(self.path / "refs.json", _dump(refs))
            return new

    def _apply_one(self, files: dict[str, FileEntry], operation: Operation) -> None:
        path = check_path(operation.path.strip("/") if operation.kind == "delete_folder" else operation.path)
        if operation.kind == "add":
            assert operation.entry is not None
            if not self.blobs.has(operation.entry.sha256, operation.entry.size):
                raise StoreError(400, f"LFS object {operation.entry.sha256} for {path!r} was never uploaded")
            files[path] = operation.entry
        elif operation.kind == "delete":
            if files.pop(path, None) is None:
                raise entry_not_found(self.id, path)
        else:
            doomed = [name for name in files if name.startswith(path + "/")]
            if not doomed:
                raise entry_not_found(self.id, path)
            for name in doomed:
                del files[name]

    def _write_commit(
        self, files: dict[str, FileEntry], *, parents: tuple[str, ...], title: str, message: str, author: str
    ) -> Commit:
        body = {
            "parents": list(parents),
            "title": title,
            "message": message,
            "authors": [author],
            "date": now_iso(),
            "files": {path: entry.to_dict() for path, entry in sorted(files.items())},
            "nonce": uuid.uuid4().hex,
        }
        body["id"] = hashlib.sha1(_dump(body)).hexdigest()
        _write_atomic(self.path / "objects" / f"{body['id']}.json", _dump(body))
        return Commit.from_dict(body)

    def create_tag(self, tag: str, revision: str, message: str = "") -> str:
        """Tag ``revision``; an existing tag is never moved (409)."""
        check_ref_name(tag)
        with _locked(self.path / "lock"):
            refs = self.refs()
            if tag in refs["tags"]:
                raise StoreError(409, f"Tag {tag!r} already exists in {self.id!r}; tags are immutable")
            target = self.resolve(revision)
            refs["tags"][tag] = {"target": target, "message": message, "date": now_iso()}
            _write_atomic(self.path / "refs.json", _dump(refs))
            return target

    def create_branch(self, branch: str, revision: str | None) -> str:
        """Create ``branch`` at ``revision`` (default: the head of ``main``); 409 if it exists."""
        check_ref_name(branch)
        with _locked(self.path / "lock"):
            refs = self.refs()
            if branch in refs["branches"]:
                raise StoreError(409, f"Branch {branch!r} already exists in {self.id!r}")
            target = self.resolve(revision or "main")
            refs["branches"][branch] = target
            _write_atomic(self.path / "refs.json", _dump(refs))
            return target

    def delete_branch(self, branch: str) -> None:
        with _locked(self.path / "lock"):
            refs = self.refs()
            if branch == "main":
                raise StoreError(403, f"The main branch of {self.id!r} cannot be deleted")
            if refs["branches"].pop(branch, None) is None:
                raise revision_not_found(self.id, branch)
            _write_atomic(self.path / "refs.json", _dump(refs))

    def set_private(self, private: bool) -> None:
        with _locked(self.path / "lock"):
            meta = self.meta | {"private": bool(private)}
            _write_atomic(self.path / "repo.json", _dump(meta))


def _check_no_file_dir_clash(files: dict[str, FileEntry]) -> None:
    for path in files:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in files:
                raise StoreError(400, f"Path {path!r} would be inside the file {'/'.join(parts[:depth])!r}")


class Store:
    """A store root: the blob store plus one folder per repo."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / "FORMAT"
        if marker.exists() and marker.read_text().strip() != FORMAT:
            raise StoreError(500, f"{self.root} holds an unsupported store format: {marker.read_text().strip()!r}")
        if not marker.exists():
            _write_atomic(marker, (FORMAT + "\n").encode())
        self.blobs = BlobStore(self.root)
        (self.root / "repos").mkdir(exist_ok=True)

    def _repo_path(self, repo_type: str, repo_id: str) -> Path:
        if repo_type not in REPO_TYPES:
            raise StoreError(400, f"Invalid repo type {repo_type!r}: expected one of {REPO_TYPES}")
        namespace, name = check_repo_id(repo_id)
        return self.root / "repos" / f"{repo_type}s" / namespace / name

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        """The existing repo (404 ``RepoNotFound`` otherwise)."""
        path = self._repo_path(repo_type, repo_id)
        if not (path / "refs.json").is_file():
            raise repo_not_found(repo_id)
        return Repo(path, repo_type, repo_id, self.blobs)

    def create_repo(self, repo_type: str, repo_id: str, *, private: bool = False, author: str = "local") -> Repo:
        """Create a repo with an initial commit holding ``.gitattributes``; 409 if it exists."""
        path = self._repo_path(repo_type, repo_id)
        if path.parts[-2] in RESERVED_NAMESPACES:
            raise StoreError(400, f"Invalid repo id {repo_id!r}: namespace {path.parts[-2]!r} is reserved")
        if path.exists():
            raise StoreError(409, f"You already created this {repo_type} repo: {repo_id}")
        staging = Path(tempfile.mkdtemp(prefix="repo-", dir=self.blobs.tmp_dir))
        try:
            (staging / "objects").mkdir()
            meta = {"id": repo_id, "type": repo_type, "private": bool(private), "created_at": now_iso()}
            _write_atomic(staging / "repo.json", _dump(meta))
            sha = self.blobs.put_bytes(GITATTRIBUTES)
            draft = Repo(staging, repo_type, repo_id, self.blobs)
            first = draft._write_commit({".gitattributes": FileEntry.regular(sha, GITATTRIBUTES)}, parents=(),
                                        title="initial commit", message="", author=author)
            _write_atomic(staging / "refs.json", _dump({"branches": {"main": first.id}, "tags": {}}))
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, path)
            except OSError:
                raise StoreError(409, f"You already created this {repo_type} repo: {repo_id}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Repo(path, repo_type, repo_id, self.blobs)

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        """Remove a repo (its blobs stay: they may be shared)."""
        repo = self.repo(repo_type, repo_id)
        trash = self.blobs.tmp_dir / f"deleted-{uuid.uuid4().hex}"
        with _locked(repo.path / "lock"):
            os.rename(repo.path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def list_repos(self, repo_type: str) -> list[Repo]:
        """Every repo of one type, sorted by id."""
        base = self.root / "repos" / f"{repo_type}s"
        found = sorted(base.glob("*/*/refs.json")) if base.is_dir() else []
        return [Repo(p.parent, repo_type, f"{p.parent.parent.name}/{p.parent.name}", self.blobs) for p in found]
