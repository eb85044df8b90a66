"""What the routes of the local Hub server share: the :class:`Hub`, the route table and :func:`dispatch`.

Each route is a function ``(hub, request, *groups) -> Response`` registered with a method and a regex
over the raw (still percent-encoded) path; groups are unquoted before the call. The route modules
(:mod:`kalm.hub.server.api`.*) register themselves when that package imports them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from kalm.hub.server.http import Request, Response
from kalm.hub.server.repo import Repo
from kalm.hub.server.store import Store
from kalm.hub.server.validate import StoreError, repo_not_found

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


def web_url(request: Request, kind: str, repo_id: str) -> str:
    """The repo's page URL as the Hub forms it (``/datasets/`` prefix for datasets)."""
    return f"{request.base_url}/{'datasets/' if TYPES.get(kind, kind) == 'dataset' else ''}{repo_id}"


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
                return function(
                    hub, request, *[unquote(g) if g is not None else None for g in match.groups()]
                )
    if allowed:
        raise StoreError(405, f"Method {request.method} not allowed on {request.path[:200]}")
    raise StoreError(404, f"Not found: {request.path[:200]}")
