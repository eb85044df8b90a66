"""Receiving Xet uploads: xorbs and shards decoded in pure Python, files rebuilt into sha256 blobs (stdlib
only).

``huggingface_hub`` 2.4.0 uploads every LFS file through Xet whenever ``hf_xet`` is installed (it is, as a
dependency) and ``HF_HUB_DISABLE_XET`` is unset; no server answer makes it fall back to Git LFS. So the
server speaks the upload half of Xet (``xet-core``'s ``spec/``): a client uploads *xorbs* (runs of
content-defined chunks, each LZ4-frame compressed, optionally byte-grouped) and then a *shard* whose file
section lists, per file, the xorb chunk ranges that rebuild it and the file's sha256. On the shard the
server rebuilds each file, streams it into the blob store, which checks the sha256 (so a wrong xorb can
never become a wrong file), and the later commit's ``lfsFile`` finds the blob as after a Git LFS upload.

Downloads stay plain HTTP (the server sends no ``X-Xet-Hash``). Xorbs are kept under ``<root>/xet/xorbs/``
because clients deduplicate new uploads against xorbs they uploaded before; deleting them is safe (a
client whose cache names a deleted xorb gets a clear error, and uploads again after clearing the cache).
"""

from __future__ import annotations

import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HASH_RE_LEN = 64
MAX_XORB_BYTES = 64 << 20
MAX_CHUNK_BYTES = 128 << 10
SHARD_TAG_PREFIX = b"HFRepoMetaData\0"
SHARD_VERSION = 2
ENTRY = 48
BOOKEND = b"\xff" * 32
FLAG_VERIFICATION = 1 << 31
FLAG_METADATA_EXT = 1 << 30
LZ4_MAGIC = 0x184D2204


class XetFormatError(ValueError):
    """A xorb or shard that does not follow the format (or does not rebuild a file)."""


def hash_hex(raw: bytes) -> str:
    """Xet's string form of a 32-byte hash: four little-endian u64 words, each printed as 16 hex digits."""
    return b"".join(raw[i : i + 8][::-1] for i in range(0, 32, 8)).hex()


# --- chunk compression ------------------------------------------------------------------------------


def lz4_frame_decompress(data: bytes, limit: int) -> bytes:
    """Decode one LZ4 frame (linked or independent blocks, checksums skipped); at most ``limit`` bytes."""
    if len(data) < 7 or struct.unpack_from("<I", data)[0] != LZ4_MAGIC:
        raise XetFormatError("chunk is not an LZ4 frame")
    flags = data[4]
    if flags >> 6 != 1:
        raise XetFormatError("unsupported LZ4 frame version")
    position = 6 + (8 if flags & 0x08 else 0) + (4 if flags & 0x01 else 0) + 1  # FLG BD [size] [dict] HC
    block_checksum = bool(flags & 0x10)
    out = bytearray()
    while True:
        if position + 4 > len(data):
            raise XetFormatError("LZ4 frame is cut")
        size = struct.unpack_from("<I", data, position)[0]
        position += 4
        if size == 0:
            return bytes(out)
        raw, size = bool(size & 0x80000000), size & 0x7FFFFFFF
        block = data[position : position + size]
        if len(block) != size:
            raise XetFormatError("LZ4 block is cut")
        position += size + (4 if block_checksum else 0)
        if raw:
            out += block
        else:
            _lz4_block(block, out, limit)
        if len(out) > limit:
            raise XetFormatError(f"LZ4 frame decodes to more than {limit} bytes")


def _lz4_block(src: bytes, out: bytearray, limit: int) -> None:
    """Append the decoded LZ4 block ``src`` to ``out`` (matches may reach into earlier blocks)."""
    i, end = 0, len(src)
    try:
        while i < end:
            token = src[i]
            i += 1
            literals = token >> 4
            if literals == 15:
                while True:
                    extra = src[i]
                    i += 1
                    literals += extra
                    if extra != 255:
                        break
            out += src[i : i + literals]
            i += literals
            if i >= end:
                return
            offset = src[i] | src[i + 1] << 8
            i += 2
            length = token & 15
            if length == 15:
                while True:
                    extra = src[i]
                    i += 1
                    length += extra
                    if extra != 255:
                        break
            length += 4
            start = len(out) - offset
            if offset == 0 or start < 0:
                raise XetFormatError("LZ4 match out of range")
            if len(out) + length > limit:
                raise XetFormatError(f"LZ4 frame decodes to more than {limit} bytes")
            if length <= offset:
                out += out[start : start + length]
            else:
                out += (out[start:] * (length // offset + 1))[:length]
    except IndexError:
        raise XetFormatError("LZ4 block is cut") from None


def bg4_regroup(data: bytes) -> bytes:
    """Undo the byte grouping: byte ``k`` of group ``g`` is byte ``4k + g`` of the chunk."""
    n = len(data)
    out = bytearray(n)
    start = 0
    for group in range(4):
        size = n // 4 + (1 if group < n % 4 else 0)
        out[group::4] = data[start : start + size]
        start += size
    return bytes(out)


# --- xorbs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkRef:
    offset: int
    compressed: int
    scheme: int
    size: int


def xorb_chunks(data: bytes) -> list[ChunkRef]:
    """The chunk headers of a serialized xorb (a footer, if any, ends the list)."""
    chunks: list[ChunkRef] = []
    position = 0
    while position + 8 <= len(data):
        version, scheme = data[position], data[position + 4]
        compressed = int.from_bytes(data[position + 1 : position + 4], "little")
        size = int.from_bytes(data[position + 5 : position + 8], "little")
        if version != 0 or scheme > 2:
            break  # the optional xorb footer
        if size > MAX_CHUNK_BYTES or position + 8 + compressed > len(data):
            raise XetFormatError(f"xorb chunk {len(chunks)} is cut or larger than {MAX_CHUNK_BYTES} bytes")
        chunks.append(ChunkRef(position + 8, compressed, scheme, size))
        position += 8 + compressed
    if not chunks:
        raise XetFormatError("xorb holds no chunk")
    return chunks


def chunk_bytes(data: bytes, chunk: ChunkRef) -> bytes:
    """The uncompressed bytes of one chunk of a xorb."""
    raw = data[chunk.offset : chunk.offset + chunk.compressed]
    if chunk.scheme == 0:
        decoded = raw
    else:
        decoded = lz4_frame_decompress(raw, chunk.size)
        if chunk.scheme == 2:
            decoded = bg4_regroup(decoded)
    if len(decoded) != chunk.size:
        raise XetFormatError(f"chunk decodes to {len(decoded)} bytes; its header says {chunk.size}")
    return decoded


# --- shards -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    xorb: str
    start: int
    end: int
    size: int


@dataclass(frozen=True)
class XetFile:
    file_hash: str
    sha256: str | None
    segments: tuple[Segment, ...]


def shard_files(data: bytes) -> list[XetFile]:
    """The files of an upload shard's file-info section (the CAS-info section and footer are not needed)."""
    if len(data) < ENTRY or not data.startswith(SHARD_TAG_PREFIX):
        raise XetFormatError("not a shard (bad header tag)")
    if struct.unpack_from("<Q", data, 32)[0] != SHARD_VERSION:
        raise XetFormatError(f"unsupported shard version {struct.unpack_from('<Q', data, 32)[0]}")
    files: list[XetFile] = []
    position = ENTRY
    while True:
        entry = data[position : position + ENTRY]
        if len(entry) != ENTRY:
            raise XetFormatError("shard file section is cut (no bookend)")
        if entry[:32] == BOOKEND:
            return files
        flags, count = struct.unpack_from("<II", entry, 32)
        position += ENTRY
        segments = []
        for _ in range(count):
            raw = data[position : position + ENTRY]
            if len(raw) != ENTRY:
                raise XetFormatError("shard file entry is cut")
            _, size, start, end = struct.unpack_from("<IIII", raw, 32)
            if end <= start:
                raise XetFormatError("shard names an empty chunk range")
            segments.append(Segment(hash_hex(raw[:32]), start, end, size))
            position += ENTRY
        if flags & FLAG_VERIFICATION:
            position += ENTRY * count
        sha256 = None
        if flags & FLAG_METADATA_EXT:
            ext = data[position : position + ENTRY]
            if len(ext) != ENTRY:
                raise XetFormatError("shard metadata entry is cut")
            sha256 = hash_hex(ext[:32])
            position += ENTRY
        files.append(XetFile(hash_hex(entry[:32]), sha256, tuple(segments)))


# --- storage ----------------------------------------------------------------------------------------


class XorbStore:
    """``<root>/xet/xorbs/<aa>/<hash>``: the xorbs clients uploaded, as they sent them."""

    def __init__(self, root: Path, tmp_dir: Path) -> None:
        self.dir, self.tmp_dir = root / "xet" / "xorbs", tmp_dir

    def path(self, xorb: str) -> Path:
        if len(xorb) != HASH_RE_LEN or any(c not in "0123456789abcdef" for c in xorb):
            raise XetFormatError(f"invalid xorb hash {xorb[:80]!r}")
        return self.dir / xorb[:2] / xorb

    def has(self, xorb: str) -> bool:
        return self.path(xorb).is_file()

    def put(self, xorb: str, data: bytes) -> bool:
        """Store a xorb whose chunk headers parse; ``False`` when it was already there.

        Its chunks are decoded (and every rebuilt file's sha256 checked) when a shard uses it.
        """
        target = self.path(xorb)
        xorb_chunks(data)
        if target.is_file() and target.stat().st_size == len(data):
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix="xorb-", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return True

    def file_bytes(self, file: XetFile) -> Iterator[bytes]:
        """The bytes of ``file``, chunk by chunk, from the xorbs its segments name."""
        loaded: tuple[str, bytes, list[ChunkRef]] | None = None
        for segment in file.segments:
            if loaded is None or loaded[0] != segment.xorb:
                try:
                    data = self.path(segment.xorb).read_bytes()
                except FileNotFoundError:
                    raise XetFormatError(
                        f"xorb {segment.xorb[:16]} is not on this server; clear the client's "
                        "Xet cache (HF_HOME/xet) and upload again"
                    ) from None
                loaded = (segment.xorb, data, xorb_chunks(data))
            _, data, chunks = loaded
            if segment.end > len(chunks):
                raise XetFormatError(f"xorb {segment.xorb[:16]} has {len(chunks)} chunks, not {segment.end}")
            produced = 0
            for chunk in chunks[segment.start : segment.end]:
                piece = chunk_bytes(data, chunk)
                produced += len(piece)
                yield piece
            if produced != segment.size:
                raise XetFormatError(
                    f"xorb {segment.xorb[:16]} chunks {segment.start}-{segment.end} hold "
                    f"{produced} bytes; the shard says {segment.size}"
                )
