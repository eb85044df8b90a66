"""Content-addressed blob storage of the local Hub server (stdlib only).

Every file stored in any repo lives once under ``<root>/blobs/sha256/<aa>/<sha256>``, named by the sha256
of its bytes. A blob is streamed into ``<root>/tmp/`` while it is hashed, checked against the expected
digest and size, fsynced, and only then renamed into place (``os.replace`` on the same filesystem), so a
killed upload leaves at most a stray file in ``tmp/`` and never a wrong or partial blob. The sha256 runs
in a helper thread (hashlib releases the GIL), overlapping the receiving and writing of the next chunks,
and on Linux the disk writes start every :data:`WRITEBACK_BYTES` (``sync_file_range``), so that the
final fsync has little left to wait for.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import queue
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20
HASH_QUEUE = 8
WRITEBACK_BYTES = 8 << 20
SYNC_FILE_RANGE_WRITE = 2
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

    def put_stream(
        self, chunks: Iterable[bytes], *, sha256: str | None = None, size: int | None = None
    ) -> str:
        """Store the bytes of ``chunks``; verify ``sha256``/``size`` when given. Returns the digest."""
        fd, tmp_name = tempfile.mkstemp(prefix="blob-", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                actual, written = _write_hashed(chunks, out)
                out.flush()
                os.fsync(out.fileno())
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


def _write_hashed(chunks: Iterable[bytes], out: BinaryIO) -> tuple[str, int]:
    """Write ``chunks`` to ``out`` while a helper thread hashes them; returns ``(sha256, bytes written)``."""
    digest = hashlib.sha256()
    pending: queue.Queue[bytes | None] = queue.Queue(HASH_QUEUE)
    hasher = threading.Thread(target=_feed_until_none, args=(pending, digest.update), daemon=True)
    hasher.start()
    written = started = 0
    try:
        for chunk in chunks:
            pending.put(chunk)
            out.write(chunk)
            written += len(chunk)
            if written - started >= WRITEBACK_BYTES:
                _start_writeback(out, started, written - started)
                started = written
    finally:
        pending.put(None)
        hasher.join()
    return digest.hexdigest(), written


def _libc_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range`` on Linux (``None`` elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return function


_SYNC_FILE_RANGE = _libc_sync_file_range()


def _start_writeback(out: BinaryIO, offset: int, length: int) -> None:
    """Start writing ``length`` bytes at ``offset`` of ``out`` to disk, without waiting (a hint: errors
    ignored)."""
    if _SYNC_FILE_RANGE is not None:
        out.flush()
        _SYNC_FILE_RANGE(out.fileno(), offset, length, SYNC_FILE_RANGE_WRITE)


def _feed_until_none(pending: queue.Queue[bytes | None], update: Callable[[bytes], None]) -> None:
    """Pass every queued chunk to ``update`` until ``None`` arrives."""
    while (chunk := pending.get()) is not None:
        update(chunk)


def git_blob_oid(data: bytes) -> str:
    """The git object id (sha1) of a blob holding ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The Git LFS pointer file that stands for a large file in a git tree."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
