"""The upload half of Xet, so that the real clients upload without ``HF_HUB_DISABLE_XET=1`` (stdlib only).

- ``GET /api/{t}s/{id}/xet-write-token/{rev}``: a short-lived CAS token (HMAC of its expiry) and the CAS
  URL, which is this server's ``/xet``; needs the write token like every write;
- ``GET /xet/v1/chunks/...``: global deduplication, never a hit (404);
- ``POST /xet/v1/xorb-grants/...``: 200 when the xorb is already here, else 404, which makes the client
  upload it directly;
- ``POST /xet/v1/xorbs/{prefix}/{hash}``: store a xorb;
- ``POST /xet/v2/shards`` (NDJSON progress answer) and ``/xet/v1/shards``: rebuild the shard's files into
  sha256-checked blobs (:mod:`kalm.hub.server.xet`); a failure is an ``error`` frame whose message the client
  shows.

Downloads never use Xet (no ``X-Xet-Hash`` header), so read tokens are refused.
"""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

from kalm.hub.server.blobs import BlobError
from kalm.hub.server.http import Request, Response
from kalm.hub.server.routing import REPO, Hub, route
from kalm.hub.server.validate import StoreError
from kalm.hub.server.xet import MAX_XORB_BYTES, XetFile, XetFormatError, shard_files

TOKEN_SECONDS = 3600
MAX_SHARD_BYTES = 64 << 20


@route("GET", rf"/api/(models|datasets)/{REPO}/xet-write-token/([^/]+)")
def write_token(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    hub.repo(request, kind, repo_id, write=True)
    expires = int(time.time()) + TOKEN_SECONDS
    token = f"{expires}.{hub.ticket('xet-write', expires)}"
    cas = f"{request.base_url}/xet"
    headers = {"X-Xet-Cas-Url": cas, "X-Xet-Access-Token": token, "X-Xet-Token-Expiration": str(expires)}
    return Response(body={"accessToken": token, "exp": expires, "casUrl": cas}, headers=headers)


@route("GET", rf"/api/(models|datasets)/{REPO}/xet-read-token/([^/]+)")
def read_token(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    hub.repo(request, kind, repo_id)
    raise StoreError(404, "This server serves downloads over plain HTTP only (resolve), not through Xet")


def _require_cas_token(hub: Hub, request: Request) -> None:
    expires, _, mac = request.headers.get("Authorization", "").removeprefix("Bearer ").partition(".")
    valid = expires.isdigit() and hmac.compare_digest(
        mac.encode(errors="replace"), hub.ticket("xet-write", int(expires)).encode()
    )
    if not valid or int(expires) < time.time():
        raise StoreError(401, "Invalid or expired Xet token: ask xet-write-token again")


@route("GET", r"/xet/v1/chunks/([^/]+)/([0-9a-f]{64})")
def global_dedup(hub: Hub, request: Request, prefix: str, chunk: str) -> Response:
    raise StoreError(404, "No global deduplication on this server")


@route("POST", r"/xet/v1/xorb-grants/([^/]+)/([0-9a-f]{64})")
def xorb_grant(hub: Hub, request: Request, prefix: str, xorb: str) -> Response:
    _require_cas_token(hub, request)
    request.body(1 << 16)
    if hub.store.xorbs.has(xorb):
        return Response(body={})  # 200: already uploaded, nothing to send
    raise StoreError(404, "No upload grants here: upload the xorb directly")


@route("POST", r"/xet/v1/xorbs/([^/]+)/([0-9a-f]{64})")
def upload_xorb(hub: Hub, request: Request, prefix: str, xorb: str) -> Response:
    _require_cas_token(hub, request)
    data = request.body(MAX_XORB_BYTES + (1 << 20))
    try:
        inserted = hub.store.xorbs.put(xorb, data)
    except XetFormatError as error:
        raise StoreError(400, f"Xorb {xorb[:16]} rejected: {error}") from None
    return Response(body={"was_inserted": inserted})


@route("POST", r"/xet/(v1|v2)/shards")
def upload_shard(hub: Hub, request: Request, version: str) -> Response:
    """Rebuild every file of the shard; v2 answers NDJSON frames (``result``, or ``error`` with a message)."""
    _require_cas_token(hub, request)
    data = request.body(MAX_SHARD_BYTES)
    try:
        for file in shard_files(data):
            _rebuild(hub, file)
    except (XetFormatError, BlobError) as error:
        if version == "v1":
            raise StoreError(400, f"Shard rejected: {error}") from None
        return _frames({"type": "error", "message": f"kalm hub: shard rejected: {error}", "retryable": False})
    return _frames({"type": "result"}) if version == "v2" else Response(body={"result": 1})


def _rebuild(hub: Hub, file: XetFile) -> None:
    """Stream the file out of its xorbs into the blob store (which checks the sha256 the shard names)."""
    if file.sha256 is not None and hub.store.blobs.has(file.sha256):
        return
    size = sum(segment.size for segment in file.segments)
    if size > hub.max_lfs_bytes:
        raise XetFormatError(f"file of {size} bytes exceeds the limit of {hub.max_lfs_bytes}")
    try:
        hub.store.blobs.put_stream(hub.store.xorbs.file_bytes(file), sha256=file.sha256, size=size)
    except BlobError as error:
        raise XetFormatError(f"file {file.file_hash[:16]} does not rebuild from its xorbs: {error}") from None


def _frames(*frames: dict[str, Any]) -> Response:
    raw = b"".join(json.dumps(frame).encode() + b"\n" for frame in frames)
    return Response(raw=raw, headers={"Content-Type": "application/x-ndjson"})
