"""Git LFS "basic" transfer: the batch endpoint and the PUT of each object (stdlib only)."""

from __future__ import annotations

import hmac
from typing import Any

from kalm.hub.server.blobs import SHA256_RE, BlobError
from kalm.hub.server.http import Request, Response
from kalm.hub.server.payload import as_object, listing
from kalm.hub.server.routing import REPO, Hub, route
from kalm.hub.server.validate import StoreError, bad_request

MAX_BATCH_OBJECTS = 1000


@route("POST", rf"/(datasets/)?{REPO}\.git/info/lfs/objects/batch")
def lfs_batch(hub: Hub, request: Request, dataset: str | None, repo_id: str) -> Response:
    hub.repo(request, "datasets" if dataset else "models", repo_id, write=True)
    data = request.json()
    if data.get("operation") != "upload":
        raise bad_request("Only the LFS upload operation is supported")
    items = listing(data, "objects", "LFS batch")
    if len(items) > MAX_BATCH_OBJECTS:
        raise bad_request(f"LFS batch of {len(items)} objects: at most {MAX_BATCH_OBJECTS} per request")
    objects = []
    for item in items:
        item = as_object(item, "LFS batch object")
        objects.append(_batch_answer(hub, request, item.get("oid"), item.get("size")))
    return Response(body={"transfer": "basic", "objects": objects, "hash_algo": "sha256"})


def _batch_answer(hub: Hub, request: Request, oid: object, size: object) -> dict[str, Any]:
    """One object's answer in an LFS batch: an error, an upload action, or nothing (the blob is stored)."""
    if not (isinstance(oid, str) and SHA256_RE.match(oid) and type(size) is int and size >= 0):
        return {
            "oid": oid if isinstance(oid, str) else "",
            "size": -1,
            "error": {"code": 422, "message": "invalid oid or size"},
        }
    answer: dict[str, Any] = {"oid": oid, "size": size}
    if size > hub.max_lfs_bytes:
        answer["error"] = {
            "code": 413,
            "message": f"{size} bytes exceeds the limit of {hub.max_lfs_bytes}",
        }
    elif not hub.store.blobs.has(oid, size):
        href = f"{request.base_url}/lfs-upload/{oid}?size={size}&ticket={hub.ticket(oid, size)}"
        answer["actions"] = {"upload": {"href": href, "header": {}}}
        answer["authenticated"] = True
    return answer


@route("PUT", r"/lfs-upload/([0-9a-f]{64})")
def lfs_upload(hub: Hub, request: Request, oid: str) -> Response:
    size_text = request.query.get("size", "")
    if not size_text.isdigit() or not size_text.isascii():
        raise bad_request("Missing or invalid size")
    size = int(size_text)
    if not hmac.compare_digest(
        request.query.get("ticket", "").encode(errors="replace"), hub.ticket(oid, size).encode()
    ):
        raise StoreError(403, "Invalid or expired upload ticket: ask the LFS batch endpoint again")
    try:
        hub.store.blobs.put_stream(request.body_chunks(min(size, hub.max_lfs_bytes)), sha256=oid, size=size)
    except BlobError as error:
        raise StoreError(400, f"Upload of {oid} rejected: {error}") from None
    return Response(body={})
