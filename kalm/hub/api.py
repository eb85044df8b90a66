"""The Hub API routes of the local server: repos, refs, tree, commits, resolve, LFS (stdlib only).

Each route is a function ``(hub, request, *groups) -> Response`` registered with a method and a regex
over the raw (still percent-encoded) path; groups are unquoted before the call. The endpoints and
their shapes follow ``shared/design/hub.md``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from kalm.hub.blobs import SHA256_RE, BlobError
from kalm.hub.http import Request, Response, parse_range
from kalm.hub.store import Commit, FileEntry, Operation, Repo, Store
from kalm.hub.validate import StoreError, check_path, repo_not_found
from kalm.hub.tree import last_commits, path_info, repo_info, tree_entries

LFS_THRESHOLD = 10 << 20
LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".gguf", ".npy", ".npz", ".zip", ".gz")
TYPES = {"models": "model", "datasets": "dataset"}
REPO = r"([^/]+/[^/]+)"


@dataclass
class Hub:
    """What routes share: the store, the write token, the per-process LFS ticket key, the limits."""

    store: Store
    token: str | None
    user: str = "local"
    max_commit_bytes: int = 1 << 30
    max_lfs_bytes: int = 50 << 30
    ticket_key: bytes = field(default_factory=lambda: os.urandom(32))

    def ticket(self, oid: str, size: int) -> str:
        return hmac.new(self.ticket_key, f"{oid}:{size}".encode(), hashlib.sha256).hexdigest()

    def repo(self, request: Request, kind: str, repo_id: str, *, write: bool = False) -> Repo:
        """The repo, refusing writes without the token and hiding private repos from anonymous readers."""
        if write:
            request.require_write()
        repo = self.store.repo(TYPES.get(kind, kind), repo_id)
        if not request.authorized and repo.meta.get("private"):
            raise repo_not_found(repo_id)
        return repo


Route = Callable[..., Response]
ROUTES: list[tuple[str, re.Pattern[str], Route]] = []


def route(methods: str, pattern: str) -> Callable[[Route], Route]:
    def register(function: Route) -> Route:
        for method in methods.split(","):
            ROUTES.append((method, re.compile(f"^{pattern}$"), function))
        return function

    return register


def dispatch(hub: Hub, request: Request) -> Response:
    """Find the route for ``request`` and run it (404 for unknown paths, 405 for wrong methods)."""
    allowed = False
    for method, pattern, function in ROUTES:
        match = pattern.match(request.path)
        if match:
            allowed = True
            if method == request.method or (method == "GET" and request.method == "HEAD"):
                return function(hub, request, *[unquote(g) if g is not None else None for g in match.groups()])
    if allowed:
        raise StoreError(405, f"Method {request.method} not allowed on {request.path}")
    raise StoreError(404, f"Not found: {request.path}")


@route("GET", r"/api/whoami-v2")
def whoami(hub: Hub, request: Request) -> Response:
    if not request.authorized:
        raise StoreError(401, "Invalid credentials in Authorization header")
    role = {"role": "write", "displayName": "kalm local hub"}
    return Response(body={"type": "user", "name": hub.user, "fullname": hub.user, "orgs": [],
                          "auth": {"type": "access_token", "accessToken": role}})


@route("POST", r"/api/validate-yaml")
def validate_yaml(hub: Hub, request: Request) -> Response:
    request.body()
    return Response(body={"errors": [], "warnings": []})


@route("POST", r"/api/repos/create")
def create_repo(hub: Hub, request: Request) -> Response:
    request.require_write()
    data = request.json()
    kind = data.get("type") or "model"
    repo_id = _repo_id_of(hub, data)
    private = bool(data.get("private")) or data.get("visibility") == "private"
    url = f"{request.base_url}/{'datasets/' if kind == 'dataset' else ''}{repo_id}"
    try:
        hub.store.create_repo(kind, repo_id, private=private, author=hub.user)
    except StoreError as error:
        error.extra["url"] = url  # the real Hub names the existing repo in its 409
        raise
    return Response(body={"url": url, "name": repo_id, "id": repo_id})


def _repo_id_of(hub: Hub, data: dict[str, Any]) -> str:
    name, organization = data.get("name"), data.get("organization") or hub.user
    if not isinstance(name, str) or not isinstance(organization, str):
        raise StoreError(400, "Invalid repo name: 'name' (and 'organization') must be strings")
    return f"{organization}/{name}"


@route("DELETE", r"/api/repos/delete")
def delete_repo(hub: Hub, request: Request) -> Response:
    request.require_write()
    data = request.json()
    repo_id = _repo_id_of(hub, data)
    hub.store.delete_repo(data.get("type") or "model", repo_id)
    return Response(body={})


@route("GET", r"/api/(models|datasets)")
def list_repos(hub: Hub, request: Request, kind: str) -> Response:
    author = request.query.get("author")
    search = request.query.get("search", "")
    found = []
    for repo in hub.store.list_repos(TYPES[kind]):
        if (author and not repo.id.startswith(author + "/")) or search not in repo.id:
            continue
        if repo.meta.get("private") and not request.authorized:
            continue
        head = repo.snapshot("main")
        found.append({"id": repo.id, "sha": head.id, "lastModified": head.date, "private": repo.meta["private"]})
    return Response(body=found)


@route("GET", rf"/api/(models|datasets)/{REPO}(?:/revision/([^/]+))?")
def get_repo_info(hub: Hub, request: Request, kind: str, repo_id: str, revision: str | None) -> Response:
    repo = hub.repo(request, kind, repo_id)
    commit = repo.snapshot(revision or "main")
    blobs = request.query.get("blobs", "").lower() in ("1", "true")
    return Response(body=repo_info(repo, commit, blobs=blobs))


@route("PUT", rf"/api/(models|datasets)/{REPO}/settings")
def settings(hub: Hub, request: Request, kind: str, repo_id: str) -> Response:
    repo = hub.repo(request, kind, repo_id, write=True)
    data = request.json()
    if "private" in data or "visibility" in data:
        repo.set_private(bool(data.get("private")) or data.get("visibility") == "private")
    return Response(body={})


@route("GET", rf"/api/(models|datasets)/{REPO}/refs")
def refs(hub: Hub, request: Request, kind: str, repo_id: str) -> Response:
    data = hub.repo(request, kind, repo_id).refs()
    branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in sorted(data["branches"].items())]
    tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": t["target"]} for n, t in sorted(data["tags"].items())]
    return Response(body={"branches": branches, "tags": tags, "converts": [], "pullRequests": []})


@route("GET", rf"/api/(models|datasets)/{REPO}/commits/([^/]+)")
def commits(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    history = hub.repo(request, kind, repo_id).history(revision)
    return Response(body=[_commit_json(commit) for commit in history])


def _commit_json(commit: Commit) -> dict[str, Any]:
    authors = [{"user": author, "avatar": None} for author in commit.authors]
    return {"id": commit.id, "title": commit.title, "message": commit.message, "authors": authors,
            "date": commit.date, "parents": list(commit.parents)}


@route("GET", rf"/api/(models|datasets)/{REPO}/tree/([^/]+)(?:/(.*))?")
def tree(hub: Hub, request: Request, kind: str, repo_id: str, revision: str, path: str | None) -> Response:
    repo = hub.repo(request, kind, repo_id)
    commit = repo.snapshot(revision)
    recursive = request.query.get("recursive", "").lower() in ("1", "true")
    entries = tree_entries(commit.files, (path or "").strip("/"), recursive=recursive, repo_id=repo_id)
    if request.query.get("expand", "").lower() in ("1", "true"):
        _add_last_commits(repo, commit, entries)
    return Response(body=entries)


@route("POST", rf"/api/(models|datasets)/{REPO}/paths-info/([^/]+)")
def paths_info(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    repo = hub.repo(request, kind, repo_id)
    data = request.json()
    commit = repo.snapshot(revision)
    paths = data.get("paths") or []
    entries = [info for p in ([paths] if isinstance(paths, str) else paths) if (info := path_info(commit.files, p))]
    if str(data.get("expand", "")).lower() in ("1", "true"):
        _add_last_commits(repo, commit, entries)
    return Response(body=entries)


def _add_last_commits(repo: Repo, commit: Commit, entries: list[dict[str, Any]]) -> None:
    found = last_commits(repo, commit, [entry["path"] for entry in entries])
    for entry in entries:
        last = found[entry["path"]]
        entry["lastCommit"] = {"id": last.id, "title": last.title, "date": last.date}


@route("POST", rf"/api/(models|datasets)/{REPO}/tag/([^/]+)")
def create_tag(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    repo = hub.repo(request, kind, repo_id, write=True)
    data = request.json()
    tag = str(data.get("tag") or "")
    target = repo.create_tag(tag, revision, str(data.get("message") or ""))
    return Response(body={"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": target})


@route("DELETE", rf"/api/(models|datasets)/{REPO}/tag/([^/]+)")
def delete_tag(hub: Hub, request: Request, kind: str, repo_id: str, tag: str) -> Response:
    hub.repo(request, kind, repo_id, write=True)
    raise StoreError(403, f"Tag {tag!r} of {repo_id!r} cannot be deleted: tags on this server are immutable")


@route("POST", rf"/api/(models|datasets)/{REPO}/branch/([^/]+)")
def create_branch(hub: Hub, request: Request, kind: str, repo_id: str, branch: str) -> Response:
    repo = hub.repo(request, kind, repo_id, write=True)
    target = repo.create_branch(branch, request.json().get("startingPoint"))
    return Response(body={"name": branch, "ref": f"refs/heads/{branch}", "targetCommit": target})


@route("DELETE", rf"/api/(models|datasets)/{REPO}/branch/([^/]+)")
def delete_branch(hub: Hub, request: Request, kind: str, repo_id: str, branch: str) -> Response:
    hub.repo(request, kind, repo_id, write=True).delete_branch(branch)
    return Response(body={})


@route("POST", rf"/api/(models|datasets)/{REPO}/preupload/([^/]+)")
def preupload(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    repo = hub.repo(request, kind, repo_id, write=True)
    files = repo.snapshot(revision).files
    answers = []
    for item in request.json().get("files", []):
        path = check_path(str(item.get("path", "")))
        mode = _upload_mode(path, int(item.get("size") or 0), base64.b64decode(item.get("sample") or ""))
        existing = files.get(path)
        oid = None
        if existing is not None:
            oid = existing.sha256 if mode == "lfs" else (None if existing.lfs else existing.oid)
        answers.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
    return Response(body={"files": answers, "commitOid": repo.resolve(revision)})


def _upload_mode(path: str, size: int, sample: bytes) -> str:
    """``lfs`` for large, binary or known-binary-suffix files (as the real Hub's .gitattributes would say)."""
    if size > LFS_THRESHOLD or path.endswith(LFS_SUFFIXES) or b"\0" in sample:
        return "lfs"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character may be cut at the end of the 512-byte sample
        try:
            sample[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "lfs"
    return "regular"


@route("POST", rf"/api/(models|datasets)/{REPO}/commit/([^/]+)")
def commit(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    repo = hub.repo(request, kind, repo_id, write=True)
    if revision not in repo.refs()["branches"]:
        repo.resolve(revision)  # 404 for an unknown revision
        raise StoreError(400, f"Revision {revision!r} of {repo_id!r} is not a branch: commits go to branches")
    header: dict[str, Any] = {}
    operations = []
    for line in _ndjson(request.body_chunks(hub.max_commit_bytes)):
        key, value = line.get("key"), line.get("value") or {}
        if key == "header":
            header = value
        else:
            operations.append(_operation(hub, key, value))
    title = str(header.get("summary") or "Upload files")
    new = repo.apply(revision, operations, title=title, message=str(header.get("description") or ""),
                     author=hub.user, parent=header.get("parentCommit"))
    prefix = "datasets/" if kind == "datasets" else ""
    return Response(body={"success": True, "commitOid": new.id, "pullRequestUrl": None,
                          "commitUrl": f"{request.base_url}/{prefix}{repo_id}/commit/{new.id}"})


def _ndjson(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from (_json_line(line) for line in lines if line.strip())
    if pending.strip():
        yield _json_line(pending)


def _json_line(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        raise StoreError(400, "Commit payload is not valid NDJSON") from None
    if not isinstance(value, dict):
        raise StoreError(400, "Commit payload lines must be JSON objects")
    return value


def _operation(hub: Hub, key: str | None, value: dict[str, Any]) -> Operation:
    path = check_path(str(value.get("path", "")).strip("/") if key == "deletedFolder" else str(value.get("path", "")))
    if key == "file":
        if value.get("encoding", "base64") != "base64":
            raise StoreError(400, f"Unsupported encoding {value.get('encoding')!r} for {path!r}")
        data = base64.b64decode(value.get("content") or "")
        return Operation("add", path, FileEntry.regular(hub.store.blobs.put_bytes(data), data))
    if key == "lfsFile":
        oid = str(value.get("oid", ""))
        if not SHA256_RE.match(oid) or not hub.store.blobs.has(oid):
            raise StoreError(400, f"LFS object {oid!r} for {path!r} was never uploaded")
        size = hub.store.blobs.path(oid).stat().st_size
        return Operation("add", path, FileEntry.large(oid, size))
    if key in ("deletedFile", "deletedFolder"):
        return Operation("delete" if key == "deletedFile" else "delete_folder", path)
    raise StoreError(400, f"Unknown commit operation {key!r}")


@route("GET", rf"/(datasets/)?{REPO}/resolve/([^/]+)/(.+)")
def resolve(hub: Hub, request: Request, dataset: str | None, repo_id: str, revision: str, path: str) -> Response:
    repo = hub.repo(request, "datasets" if dataset else "models", repo_id)
    commit = repo.snapshot(revision)
    entry = commit.files.get(path)
    if entry is None:
        raise StoreError(404, f"Entry {path!r} not found in {repo_id!r} at {revision!r}", "EntryNotFound")
    headers = {"X-Repo-Commit": commit.id, "ETag": f'"{entry.sha256 if entry.lfs else entry.oid}"',
               "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
    if entry.lfs:
        headers["X-Linked-Size"] = str(entry.size)
        headers["X-Linked-Etag"] = f'"{entry.sha256}"'
    blob = hub.store.blobs.path(entry.sha256)
    try:
        span = parse_range(request.headers.get("Range"), entry.size) if request.method == "GET" else None
    except StoreError as error:
        error.message += f" (file size {entry.size})"
        raise
    if span is None:
        return Response(headers=headers, file=blob, offset=0, length=entry.size)
    start, length = span
    headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{entry.size}"
    return Response(status=206, headers=headers, file=blob, offset=start, length=length)


@route("POST", rf"/(datasets/)?{REPO}\.git/info/lfs/objects/batch")
def lfs_batch(hub: Hub, request: Request, dataset: str | None, repo_id: str) -> Response:
    hub.repo(request, "datasets" if dataset else "models", repo_id, write=True)
    data = request.json()
    if data.get("operation") != "upload":
        raise StoreError(400, "Only the LFS upload operation is supported")
    objects = []
    for item in data.get("objects", []):
        oid, size = str(item.get("oid", "")), item.get("size")
        answer: dict[str, Any] = {"oid": oid, "size": size if isinstance(size, int) else -1}
        if not SHA256_RE.match(oid) or not isinstance(size, int) or size < 0:
            answer["error"] = {"code": 422, "message": "invalid oid or size"}
        elif size > hub.max_lfs_bytes:
            answer["error"] = {"code": 413, "message": f"{size} bytes exceeds the limit of {hub.max_lfs_bytes}"}
        elif not hub.store.blobs.has(oid, size):
            href = f"{request.base_url}/lfs-upload/{oid}?size={size}&ticket={hub.ticket(oid, size)}"
            answer["actions"] = {"upload": {"href": href, "header": {}}}
            answer["authenticated"] = True
        objects.append(answer)
    return Response(body={"transfer": "basic", "objects": objects, "hash_algo": "sha256"})


@route("PUT", r"/lfs-upload/([0-9a-f]{64})")
def lfs_upload(hub: Hub, request: Request, oid: str) -> Response:
    try:
        size = int(request.query.get("size", ""))
    except ValueError:
        raise StoreError(400, "Missing or invalid size") from None
    if not hmac.compare_digest(request.query.get("ticket", ""), hub.ticket(oid, size)):
        raise StoreError(403, "Invalid or expired upload ticket: ask the LFS batch endpoint again")
    try:
        hub.store.blobs.put_stream(request.body_chunks(min(size, hub.max_lfs_bytes)), sha256=oid, size=size)
    except BlobError as error:
        raise StoreError(400, f"Upload of {oid} rejected: {error}") from None
    return Response(body={})
