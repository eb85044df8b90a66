"""Fixtures of the hub tests. The session's server (``hub_server``, ``hub``) lives in
``tests/conftest.py``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kalm.hub.endpoint import Endpoint
from kalm.hub.local_server import LocalServer, start_local_server


@pytest.fixture
def api(hub: Endpoint):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.url, token=hub.token)


@pytest.fixture
def repo_name() -> str:
    """A fresh repo id per test."""
    return f"tester/repo-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def server_factory(hub: Endpoint, tmp_path: Path) -> Iterator:
    """Start extra servers (own store or a given one); all are stopped at the end of the test.

    Depends on ``hub`` so that the clients are configured for local servers (Xet off, caches in tmp).
    """
    started: list[LocalServer] = []

    def start(root: Path | None = None, **kwargs) -> LocalServer:
        server = start_local_server(root or tmp_path / "store", **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
