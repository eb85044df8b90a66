"""The on-disk store of the local Hub server: repos, commits, branches, tags and pull requests (stdlib only).

On-disk format (version 1; ``<root>/FORMAT`` holds ``kalm-hub-store 1``)::

    <root>/
      FORMAT
      blobs/sha256/<aa>/<sha256>           file contents, content-addressed, read-only
                                           (see kalm.hub.server.blobs)
      tmp/                                 uploads and repos being assembled; leftovers are safe to delete
      quarantine/                          what ``kalm hub fsck --repair`` set aside
                                           (see kalm.hub.server.fsck)
      xet/xorbs/<aa>/<hash>                Xet uploads as received, kept for clients' deduplication
                                           (kalm.hub.server.xet)
      repos/<models|datasets>/<namespace>/<name>/
        repo.json                          {"id", "type", "private", "created_at", "gated"?}
        objects/<commit id>.json           immutable commit objects (see kalm.hub.server.objects)
        refs.json                          {"branches": {name: commit id},
                                            "tags": {name: {"target": commit id, "message", "date"}},
                                            "pulls"?: {number: {"target", "base", "title", "status", "date"}}}
        lock                               flock target that serialises writers of this repo

One repo folder, its commits, refs and pull requests: :mod:`kalm.hub.server.repo`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from kalm.hub.server.blobs import BlobStore
from kalm.hub.server.repo import Repo
from kalm.hub.server.xet import XorbStore
from kalm.hub.server.objects import (
    FileEntry,
    dump,
    locked,
    now_iso,
    write_atomic,
)
from kalm.hub.server.validate import (
    StoreError,
    check_repo_id,
    repo_not_found,
)

FORMAT = "kalm-hub-store 1"
REPO_TYPES = ("model", "dataset")
RESERVED_NAMESPACES = {"api", "datasets", "models", "spaces", "lfs", "buckets", "kernels", "docs", "new"}
GITATTRIBUTES = (
    b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
)

__all__ = ["Store"]


class Store:
    """A store root: the blob store plus one folder per repo."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        marker = self.root / "FORMAT"
        if marker.exists() and marker.read_text().strip() != FORMAT:
            raise StoreError(
                500, f"{self.root} holds an unsupported store format: {marker.read_text().strip()!r}"
            )
        if not marker.exists():
            write_atomic(marker, (FORMAT + "\n").encode())
        self.blobs = BlobStore(self.root)
        self.xorbs = XorbStore(self.root, self.blobs.tmp_dir)
        (self.root / "repos").mkdir(exist_ok=True)

    def _repo_path(self, repo_type: str, repo_id: str) -> Path:
        if repo_type not in REPO_TYPES:
            raise StoreError(400, f"Invalid repo type {repo_type!r}: expected one of {REPO_TYPES}")
        namespace, name = check_repo_id(repo_id)
        return self.root / "repos" / f"{repo_type}s" / namespace / name

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        """The existing repo (404 ``RepoNotFound`` otherwise)."""
        path = self._repo_path(repo_type, repo_id)
        if not path.is_dir():
            raise repo_not_found(repo_id)
        return Repo(path, repo_type, repo_id, self.blobs)

    def create_repo(
        self, repo_type: str, repo_id: str, *, private: bool = False, author: str = "local"
    ) -> Repo:
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
            write_atomic(staging / "repo.json", dump(meta))
            sha = self.blobs.put_bytes(GITATTRIBUTES)
            draft = Repo(staging, repo_type, repo_id, self.blobs)
            first = draft._write_commit(
                {".gitattributes": FileEntry.regular(sha, GITATTRIBUTES)},
                parents=(),
                title="initial commit",
                message="",
                author=author,
            )
            write_atomic(
                staging / "refs.json", dump({"branches": {"main": first.id}, "tags": {}, "pulls": {}})
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(staging, path)
            except OSError:
                raise StoreError(409, f"You already created this {repo_type} repo: {repo_id}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Repo(path, repo_type, repo_id, self.blobs)

    def delete_repo(self, repo_type: str, repo_id: str) -> None:
        """Remove a repo (its blobs stay: they may be shared; ``kalm hub fsck --repair`` drops orphans)."""
        repo = self.repo(repo_type, repo_id)
        trash = self.blobs.tmp_dir / f"deleted-{uuid.uuid4().hex}"
        with locked(repo.path / "lock"):
            os.rename(repo.path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def list_repos(self, repo_type: str) -> list[Repo]:
        """Every repo folder of one type, sorted by id (damaged ones included: reading them raises)."""
        base = self.root / "repos" / f"{repo_type}s"
        found = sorted(path for path in base.glob("*/*") if path.is_dir()) if base.is_dir() else []
        return [Repo(p, repo_type, f"{p.parent.name}/{p.name}", self.blobs) for p in found]
