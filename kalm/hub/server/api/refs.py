"""Routes about refs and history: refs listing, commits, tags, branches (stdlib only)."""

from __future__ import annotations

from typing import Any

from kalm.hub.server.http import Request, Response
from kalm.hub.server.objects import Commit
from kalm.hub.server.payload import optional_text, query_flag, text
from kalm.hub.server.routing import REPO, Hub, route
from kalm.hub.server.validate import MAX_MESSAGE_BYTES, bad_request


@route("GET", rf"/api/(models|datasets)/{REPO}/refs")
def refs(hub: Hub, request: Request, kind: str, repo_id: str) -> Response:
    data = hub.repo(request, kind, repo_id).refs()
    branches = [
        {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c} for n, c in sorted(data["branches"].items())
    ]
    tags = [
        {"name": n, "ref": f"refs/tags/{n}", "targetCommit": t["target"]}
        for n, t in sorted(data["tags"].items())
    ]
    body: dict[str, Any] = {"branches": branches, "tags": tags, "converts": []}
    if query_flag(request.query.get("include_prs")):
        body["pullRequests"] = [
            {"name": f"refs/pr/{n}", "ref": f"refs/pr/{n}", "targetCommit": p["target"]}
            for n, p in sorted(data["pulls"].items(), key=lambda item: int(item[0]))
        ]
    else:
        body["pullRequests"] = []
    return Response(body=body)


@route("GET", rf"/api/(models|datasets)/{REPO}/commits/([^/]+)")
def commits(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    history = hub.repo(request, kind, repo_id).history(revision)
    return Response(body=[_commit_json(commit) for commit in history])


def _commit_json(commit: Commit) -> dict[str, Any]:
    authors = [{"user": author, "avatar": None} for author in commit.authors]
    return {
        "id": commit.id,
        "title": commit.title,
        "message": commit.message,
        "authors": authors,
        "date": commit.date,
        "parents": list(commit.parents),
    }


@route("POST", rf"/api/(models|datasets)/{REPO}/tag/([^/]+)")
def create_tag(hub: Hub, request: Request, kind: str, repo_id: str, revision: str) -> Response:
    repo = hub.repo(request, kind, repo_id, write=True)
    data = request.json()
    tag = text(data, "tag", "Tag creation")
    message = optional_text(data, "message", "Tag creation") or ""
    if len(message.encode()) > MAX_MESSAGE_BYTES:
        raise bad_request(
            f"Tag message of {len(message.encode())} bytes exceeds the limit of {MAX_MESSAGE_BYTES}"
        )
    target = repo.create_tag(tag, revision, message)
    return Response(body={"name": tag, "ref": f"refs/tags/{tag}", "targetCommit": target})


@route("DELETE", rf"/api/(models|datasets)/{REPO}/tag/([^/]+)")
def delete_tag(hub: Hub, request: Request, kind: str, repo_id: str, tag: str) -> Response:
    hub.repo(request, kind, repo_id, write=True).delete_tag(tag)
    return Response(body={})  # never reached: tags are immutable


@route("POST", rf"/api/(models|datasets)/{REPO}/branch/([^/]+)")
def create_branch(hub: Hub, request: Request, kind: str, repo_id: str, branch: str) -> Response:
    repo = hub.repo(request, kind, repo_id, write=True)
    data = request.json()
    if data.get("emptyBranch"):
        raise bad_request("Empty branches (without history) are not supported by this server")
    target = repo.create_branch(branch, optional_text(data, "startingPoint", "Branch creation"))
    return Response(body={"name": branch, "ref": f"refs/heads/{branch}", "targetCommit": target})


@route("DELETE", rf"/api/(models|datasets)/{REPO}/branch/([^/]+)")
def delete_branch(hub: Hub, request: Request, kind: str, repo_id: str, branch: str) -> Response:
    hub.repo(request, kind, repo_id, write=True).delete_branch(branch)
    return Response(body={})
