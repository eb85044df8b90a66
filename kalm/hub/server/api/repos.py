"""Routes about whole repos: create, delete, list (with the Hub's filters), info, settings (stdlib only)."""

from __future__ import annotations

import logging
from typing import Any

from kalm.hub.server.http import Request, Response
from kalm.hub.server.payload import optional_text, query_flag
from kalm.hub.server.routing import REPO, TYPES, Hub, route, web_url
from kalm.hub.server.repo import Repo
from kalm.hub.server.tree import LISTING_FIELDS, listing_entry, repo_info
from kalm.hub.server.validate import RepoDamagedError, StoreError, bad_request

logger = logging.getLogger(__name__)
LIST_OPTIONS = {
    "author",
    "search",
    "filter",
    "full",
    "limit",
    "sort",
    "direction",
    "expand",
    "cardData",
    "gated",
}
SORT_KEYS = {"id", "lastModified", "createdAt", "downloads", "likes", "trendingScore"}
SETTINGS = {"private", "visibility", "gated"}
_LOGGED_DAMAGE: set[tuple[str, str]] = set()


@route("GET", r"/api/whoami-v2")
def whoami(hub: Hub, request: Request) -> Response:
    if not request.authorized:
        raise StoreError(401, "Invalid credentials in Authorization header")
    role = {"role": "write", "displayName": "kalm local hub"}
    return Response(
        body={
            "type": "user",
            "name": hub.user,
            "fullname": hub.user,
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": role},
        }
    )


@route("POST", r"/api/validate-yaml")
def validate_yaml(hub: Hub, request: Request) -> Response:
    request.body()
    return Response(body={"errors": [], "warnings": []})


@route("POST", r"/api/repos/create")
def create_repo(hub: Hub, request: Request) -> Response:
    request.require_write()
    data = request.json()
    kind = optional_text(data, "type", "Repo creation") or "model"
    repo_id = _repo_id_of(hub, data)
    private = _private_of(data)
    url = web_url(request, kind, repo_id)
    try:
        hub.store.create_repo(kind, repo_id, private=bool(private), author=hub.user)
    except StoreError as error:
        error.extra["url"] = url  # the real Hub names the existing repo in its 409
        raise
    return Response(body={"url": url, "name": repo_id, "id": repo_id})


def _repo_id_of(hub: Hub, data: dict[str, Any]) -> str:
    name, organization = data.get("name"), data.get("organization") or hub.user
    if not isinstance(name, str) or not isinstance(organization, str):
        raise bad_request("Invalid repo name: 'name' (and 'organization') must be strings")
    return f"{organization}/{name}"


def _private_of(data: dict[str, Any]) -> bool | None:
    """``private``/``visibility`` of a create or settings body (``None`` when neither is given)."""
    private, visibility = data.get("private"), data.get("visibility")
    if private is not None and not isinstance(private, bool):
        raise bad_request("Field 'private' must be a boolean")
    if visibility is not None and visibility not in ("private", "public"):
        raise bad_request(f"Invalid visibility {visibility!r}: expected 'private' or 'public'")
    return private if visibility is None else visibility == "private"


@route("DELETE", r"/api/repos/delete")
def delete_repo(hub: Hub, request: Request) -> Response:
    request.require_write()
    data = request.json()
    hub.store.delete_repo(optional_text(data, "type", "Repo deletion") or "model", _repo_id_of(hub, data))
    return Response(body={})


@route("GET", r"/api/(models|datasets)")
def list_repos(hub: Hub, request: Request, kind: str) -> Response:
    """Repos of one type, filtered like the Hub (``author``, ``search``, ``filter`` tags, ``gated``).

    ``full`` adds ``siblings`` and ``cardData``, ``expand`` picks fields, ``sort``/``limit`` order and cut.
    A repo that cannot be read is skipped (and logged once), so one damaged repo never breaks a listing.
    """
    unknown = sorted(set(request.queries) - LIST_OPTIONS)
    if unknown:
        raise bad_request(
            f"Listing option(s) {', '.join(unknown)} not supported by this server "
            f"(supported: {', '.join(sorted(LIST_OPTIONS))})"
        )
    unknown = sorted(set(request.queries.get("expand", [])) - LISTING_FIELDS)
    if unknown:
        raise bad_request(
            f"Cannot expand {', '.join(unknown)}: expandable are {', '.join(sorted(LISTING_FIELDS))}"
        )
    author, gated = request.query.get("author"), request.query.get("gated")
    searches = [s.lower() for s in request.queries.get("search", [])]
    filters = set(request.queries.get("filter", []))
    found = []
    for repo in hub.store.list_repos(TYPES[kind]):
        if (author and not repo.id.startswith(author + "/")) or not all(
            s in repo.id.lower() for s in searches
        ):
            continue
        entry = _entry_or_skip(repo, request)
        if entry is None or not filters <= set(entry["tags"]):
            continue
        if gated is None or bool(entry["gated"]) == query_flag(gated):
            found.append(entry)
    return Response(body=[_fields(entry, request) for entry in _sorted_and_limited(found, request)])


def _entry_or_skip(repo: Repo, request: Request) -> dict[str, Any] | None:
    """The repo's full listing entry; ``None`` for a private repo the client may not see or a damaged one."""
    try:
        meta = repo.meta
        if meta.get("private") and not request.authorized:
            return None
        return listing_entry(repo, meta, repo.snapshot("main"))
    except RepoDamagedError as error:
        if (repo.id, error.message) not in _LOGGED_DAMAGE:
            _LOGGED_DAMAGE.add((repo.id, error.message))
            logger.warning("listing skips %s %s: %s", repo.type, repo.id, error.message)
        return None


def _fields(entry: dict[str, Any], request: Request) -> dict[str, Any]:
    """The fields a listing returns: all with ``full``, the ``expand`` ones, else the Hub's default set."""
    expand = request.queries.get("expand")
    if expand:
        return {key: entry[key] for key in ("_id", "id", *expand) if key in entry}
    if query_flag(request.query.get("full")):
        return entry
    hidden = {"siblings", "usedStorage"} | (
        set() if query_flag(request.query.get("cardData")) else {"cardData"}
    )
    return {key: value for key, value in entry.items() if key not in hidden}


def _sorted_and_limited(found: list[dict[str, Any]], request: Request) -> list[dict[str, Any]]:
    sort, direction, limit = (request.query.get(key) for key in ("sort", "direction", "limit"))
    if sort is not None:
        if sort not in SORT_KEYS:
            raise bad_request(f"Invalid sort {sort!r}: expected one of {', '.join(sorted(SORT_KEYS))}")
        if direction not in (None, "-1", "1"):
            raise bad_request(f"Invalid direction {direction!r}: expected -1 or 1")
        found.sort(key=lambda entry: (str(entry[sort]), entry["id"]), reverse=direction != "1")
    if limit is not None:
        if not limit.isdigit():
            raise bad_request(f"Invalid limit {limit!r}: expected a non-negative integer")
        found = found[: int(limit)]
    return found


@route("GET", rf"/api/(models|datasets)/{REPO}(?:/revision/([^/]+))?")
def get_repo_info(hub: Hub, request: Request, kind: str, repo_id: str, revision: str | None) -> Response:
    repo = hub.repo(request, kind, repo_id)
    commit = repo.snapshot(revision or "main")
    return Response(body=repo_info(repo, commit, blobs=query_flag(request.query.get("blobs"))))


@route("PUT", rf"/api/(models|datasets)/{REPO}/settings")
def settings(hub: Hub, request: Request, kind: str, repo_id: str) -> Response:
    """Visibility and the gated setting; any other setting is refused (400) rather than ignored."""
    repo = hub.repo(request, kind, repo_id, write=True)
    data = request.json()
    unknown = sorted(set(data) - SETTINGS)
    if unknown:
        raise bad_request(
            f"Setting(s) {', '.join(unknown)} not supported by this server "
            f"(supported: {', '.join(sorted(SETTINGS))})"
        )
    repo.update_settings(private=_private_of(data), gated=data.get("gated"))
    return Response(body={})
