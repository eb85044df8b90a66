"""Routes about files: tree, paths-info, preupload, commit (NDJSON), resolve (stdlib only)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kalm.hub.server.blobs import SHA256_RE
from kalm.hub.server.http import Request, Response, parse_range
from kalm.hub.server.objects import Commit, FileEntry, Operation
from kalm.hub.server.payload import (
    as_object,
    base64_bytes,
    integer,
    listing,
    optional_text,
    parse_json,
    query_flag,
    text,
)
from kalm.hub.server.routing import REPO, Hub, route, web_url
from kalm.hub.server.repo import Repo
from kalm.hub.server.tree import last_commits, path_info, tree_entries
from kalm.hub.server.validate import (
    StoreError,
    bad_request,
    check_message,
    check_path,
    entry_not_found,
    repo_damaged,
)

LFS_THRESHOLD = 10 << 20
LFS_SUFFIXES = (
    ".parquet",
    ".arrow",
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".gguf",
    ".npy",
    ".npz",
    ".zip",
    ".gz",
)
MAX_PREUPLOAD_FILES = 1000


@route("GET", rf"/api/(models|datasets)/{REPO}/tree/([^/]+)(?:/(.*))?")
def tree(hub: Hub, request: Request, kind: str, repo_id: str, revision: str, path: str | None) -> Response:
    repo = hub.repo(request, kind, repo_id)
    commit = repo.snapshot(revision)
    entries = tree_entries(
        commit.files,
        (path or "").strip("/"),
        recursive=query_flag(request.query.get("recursive")),
        repo_id=repo_id,
    )
    if query_flag(request.query.get("expand")):
        _add_last_commits(repo, commit, entries)
    return Response(body=entries)


@route("POST", rf"/api/(models|datasets)/{REPO}/paths-info/([^/]+)")
def paths_info(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    repo = hub.repo(request, kind, repo_id)
    data = request.json()
    commit = repo.snapshot(revision)
    paths = data.get("paths") or []
    paths = [paths] if isinstance(paths, str) else paths
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise bad_request("paths-info: field 'paths' must be a list of strings")
    entries = [info for p in paths if (info := path_info(commit.files, p))]
    if query_flag(str(data.get("expand", ""))):
        _add_last_commits(repo, commit, entries)
    return Response(body=entries)


def _add_last_commits(repo: Repo, commit: Commit, entries: list[dict[str, Any]]) -> None:
    found = last_commits(repo, commit, [entry["path"] for entry in entries])
    for entry in entries:
        last = found[entry["path"]]
        entry["lastCommit"] = {"id": last.id, "title": last.title, "date": last.date}


@route("POST", rf"/api/(models|datasets)/{REPO}/preupload/([^/]+)")
def preupload(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    repo = hub.repo(request, kind, repo_id, write=True)
    files = repo.snapshot(revision).files
    items = listing(request.json(), "files", "Preupload")
    if len(items) > MAX_PREUPLOAD_FILES:
        raise bad_request(f"Preupload of {len(items)} files: at most {MAX_PREUPLOAD_FILES} per request")
    answers = []
    for item in items:
        item = as_object(item, "Preupload file")
        path = check_path(text(item, "path", "Preupload file"))
        mode = _upload_mode(
            path,
            integer(item, "size", "Preupload file", default=0),
            base64_bytes(item, "sample", "Preupload file"),
        )
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
    """Apply an NDJSON commit to a branch or ``refs/pr/N``; ``?create_pr=1`` opens a pull request instead."""
    repo = hub.repo(request, kind, repo_id, write=True)
    create_pr = query_flag(request.query.get("create_pr"))
    repo.writable_ref(revision)  # 404/400 before reading the body
    header: dict[str, Any] = {}
    operations = []
    for line in _ndjson(request.body_chunks(hub.max_commit_bytes)):
        key = line.get("key")
        value = as_object(line.get("value"), f"Commit line {key!r}: 'value'")
        if key == "header":
            header = value
        else:
            operations.append(_operation(hub, key, value))
    title = text(header, "summary", "Commit header", default="Upload files")
    message = text(header, "description", "Commit header", default="")
    check_message(title, message)
    new, number = repo.apply(
        revision,
        operations,
        title=title,
        message=message,
        author=hub.user,
        parent=optional_text(header, "parentCommit", "Commit header"),
        create_pr=create_pr,
    )
    url = web_url(request, kind, repo_id)
    return Response(
        body={
            "success": True,
            "commitOid": new.id,
            "commitUrl": f"{url}/commit/{new.id}",
            "pullRequestUrl": f"{url}/discussions/{number}" if number else None,
        }
    )


def _ndjson(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from (_json_line(line) for line in lines if line.strip())
    if pending.strip():
        yield _json_line(pending)


def _json_line(line: bytes) -> dict[str, Any]:
    return as_object(parse_json(line, "Commit payload line"), "Commit payload line")


def _operation(hub: Hub, key: Any, value: dict[str, Any]) -> Operation:
    what = f"Commit line {key!r}"
    raw_path = text(value, "path", what)
    path = check_path(raw_path.strip("/") if key == "deletedFolder" else raw_path)
    if key == "file":
        encoding = text(value, "encoding", what, default="base64")
        if encoding != "base64":
            raise bad_request(f"Unsupported encoding {encoding!r} for {path!r}")
        data = base64_bytes(value, "content", what)
        return Operation("add", path, FileEntry.regular(hub.store.blobs.put_bytes(data), data))
    if key == "lfsFile":
        oid = text(value, "oid", what, default="")
        if not SHA256_RE.match(oid) or not hub.store.blobs.has(oid):
            raise bad_request(f"LFS object {oid[:100]!r} for {path!r} was never uploaded")
        size = hub.store.blobs.path(oid).stat().st_size
        return Operation("add", path, FileEntry.large(oid, size))
    if key in ("deletedFile", "deletedFolder"):
        return Operation("delete" if key == "deletedFile" else "delete_folder", path)
    raise bad_request(f"Unknown commit operation {str(key)[:100]!r}")


@route("GET", rf"/(datasets/)?{REPO}/resolve/([^/]+)/(.+)")
def resolve(
    hub: Hub, request: Request, dataset: str | None, repo_id: str, revision: str, path: str
) -> Response:
    """A file's bytes (Range -> 206); its blob is checked before any header goes out."""
    repo = hub.repo(request, "datasets" if dataset else "models", repo_id)
    meta = repo.meta
    if meta.get("gated") and not request.authorized:
        raise StoreError(
            401,
            f"Access to {repo_id!r} is restricted: it is gated and needs this server's token",
            "GatedRepo",
        )
    commit = repo.snapshot(revision)
    entry = commit.files.get(path)
    if entry is None:
        raise entry_not_found(repo_id, path)
    if not hub.store.blobs.has(entry.sha256, entry.size):
        raise repo_damaged(repo_id, f"the content of {path!r} ({entry.sha256[:12]}) is missing or truncated")
    headers = {
        "X-Repo-Commit": commit.id,
        "ETag": f'"{entry.sha256 if entry.lfs else entry.oid}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
    }
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
