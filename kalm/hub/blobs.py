"""Content-addressed blob storage of the local Hub server (stdlib only).

Every file stored in any repo lives once under ``<root>/blobs/sha256/<aa>/<sha256>``, named by the sha256
of its bytes. A blob is streamed into ``<root>/tmp/`` while it is hashed, checked against the expected
digest and size, fsynced, and only then renamed into place (``os.replace`` on the same filesystem), so a
killed upload leaves at most a stray file in ``tmp/`` and never a wrong or partial blob.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20
STALE_TMP_SECONDS = 6 * 3600


class BlobError(ValueError):
    """A blob's bytes do not match the digest or size it was announced with."""


class BlobStore:
    """The ``blobs/`` and ``tmp/`` folders of a store root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blob_dir = root / "blobs" / "sha256"
        self.tmp_dir = root / "tmp"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        if not SHA256_RE.match(sha256):
            raise BlobError(f"invalid sha256 {sha256!r}")
        return self.blob_dir / sha256[:2] / sha256

    def has(self, sha256: str, size: int | None = None) -> bool:
        """Whether the blob exists (and has ``size`` bytes when given)."""
        try:
            stat = self.path(sha256).stat()
        except (OSError, BlobError):
            return False
        return size is None or stat.st_size == size

    def put_stream(self, chunks: Iterable[bytes], *, sha256: str | None = None, size: int | None = None) -> str:
        """Store the bytes of ``chunks``; verify ``sha256``/``size`` when given. Returns the digest."""
        digest = hashlib.sha256()
        written = 0
        fd, tmp_name = tempfile.mkstemp(prefix="blob-", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            if size is not None and written != size:
                raise BlobError(f"received {written} bytes; expected {size}")
            if sha256 is not None and actual != sha256:
                raise BlobError(f"content has sha256 {actual}; expected {sha256}")
            target = self.path(actual)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp_name, 0o444)
            os.replace(tmp_name, target)
            return actual
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)

    def put_bytes(self, data: bytes) -> str:
        """Store ``data``; returns its sha256."""
        return self.put_stream([data])

    def read_bytes(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def clean_tmp(self, older_than: float = STALE_TMP_SECONDS) -> None:
        """Remove leftovers of interrupted uploads older than ``older_than`` seconds."""
        limit = time.time() - older_than
        for entry in self.tmp_dir.iterdir():
            try:
                if entry.is_file() and entry.stat().st_mtime < limit:
                    entry.unlink()
            except OSError:
                pass


def git_blob_oid(data: bytes) -> str:
    """The git object id (sha1) of a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The Git LFS pointer file that stands for a large file in a git tree."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
