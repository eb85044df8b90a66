"""The one place that decides which Hub kalm talks to, and points every HF client at it.

Order of precedence in :func:`ensure_endpoint`:

1. the ``endpoint`` argument (e.g. a ``--hub.endpoint`` option);
2. ``$KALM_HUB_ENDPOINT``, then ``$HF_ENDPOINT`` (the user named one, e.g. ``https://huggingface.co``);
3. otherwise a local server (:mod:`kalm.hub.local_server`) started in a child process on a free loopback
   port, storing under ``$KALM_HUB_ROOT`` or ``~/.cache/kalm/hub``; it stops when this process exits (and,
   if this process is killed, as soon as the pipe to it closes: no orphans).

:func:`configure` points the clients at the endpoint through their environment variables (and, for clients
imported before, through :mod:`kalm.hub.hf_config`, the one place that patches them) and provides a token
(the server's, or any string when a local server has none). :func:`hub_api` is the ``HfApi`` for it.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kalm.errors import ConfigError
from kalm.hub.hf_config import point_clients_at
from kalm.hub.local_server import LocalServer, start_local_server

if TYPE_CHECKING:
    from huggingface_hub import HfApi

LOCAL_TOKEN = "kalm-local"


@dataclass(frozen=True)
class Endpoint:
    """A configured Hub: its URL, the token clients send, and whether it is a loopback kalm server."""

    url: str
    token: str | None
    local: bool


def configure(url: str, token: str | None = None, *, local: bool | None = None) -> Endpoint:
    """Point huggingface_hub, datasets and transformers (imported or not) at ``url``."""
    url = url.rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ConfigError(f"hub endpoint {url!r} is not an http(s) URL")
    local = _is_loopback(url) if local is None else local
    token = token or os.environ.get("HF_TOKEN") or (LOCAL_TOKEN if local else None)
    if token:
        os.environ["HF_TOKEN"] = token
    point_clients_at(url, local=local)
    return Endpoint(url=url, token=token, local=local)


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


_ACTIVE: Endpoint | None = None
_SERVER: LocalServer | None = None
_LOCK = threading.Lock()


def ensure_endpoint(
    endpoint: str | None = None, *, token: str | None = None, root: str | Path | None = None
) -> Endpoint:
    """Decide the endpoint (see the module docstring), start the local server if needed, configure clients.

    Calling it again returns the same endpoint; the local server is started at most once per process.
    """
    global _ACTIVE, _SERVER
    with _LOCK:
        named = endpoint or os.environ.get("KALM_HUB_ENDPOINT") or os.environ.get("HF_ENDPOINT")
        if _ACTIVE is not None and (named is None or named.rstrip("/") == _ACTIVE.url):
            return _ACTIVE
        if named:
            _ACTIVE = configure(named, token or os.environ.get("KALM_HUB_TOKEN") or None)
            return _ACTIVE
        if _SERVER is None or _SERVER.process.poll() is not None:
            _SERVER = start_local_server(root, token=token or os.environ.get("KALM_HUB_TOKEN") or None)
        _ACTIVE = configure(_SERVER.url, _SERVER.token, local=True)
        return _ACTIVE


def active_endpoint() -> Endpoint:
    """The endpoint chosen by :func:`ensure_endpoint` (which is called with defaults if it was not yet)."""
    return _ACTIVE or ensure_endpoint()


def hub_api(endpoint: Endpoint | None = None) -> HfApi:
    """An ``HfApi`` for ``endpoint`` (default: the active one)."""
    from huggingface_hub import HfApi  # first imported here, after configure() set the variables it reads

    endpoint = endpoint or active_endpoint()
    return HfApi(endpoint=endpoint.url, token=endpoint.token)


def shutdown_local_server() -> None:
    """Stop the server :func:`ensure_endpoint` started, if any, and forget the endpoint."""
    global _ACTIVE, _SERVER
    with _LOCK:
        if _SERVER is not None:
            _SERVER.stop()
        if _ACTIVE is not None and _ACTIVE.local and os.environ.get("HF_ENDPOINT") == _ACTIVE.url:
            del os.environ["HF_ENDPOINT"]
        _ACTIVE = _SERVER = None
