"""Shared fixtures. The default suite is offline and CPU-only; ``-m slow`` runs the long tier."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from kalm.hub.endpoint import Endpoint, configure
from kalm.hub.hf_config import use_cache_home
from kalm.hub.local_server import LocalServer, start_local_server


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """The session's local hub server: a real kalm hub in a child process on a free loopback port."""
    server = start_local_server(tmp_path_factory.mktemp("hub-store"))
    yield server
    server.stop()
    assert server.process.poll() is not None


@pytest.fixture(scope="session")
def hub(hub_server: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Endpoint:
    """The real HF clients configured for the session's server, with their caches in a temporary HF_HOME."""
    use_cache_home(tmp_path_factory.mktemp("hf-home"))
    return configure(hub_server.url, hub_server.token, local=True)


@pytest.fixture
def clevr():
    """The CLEVR-Robot environment suite."""
    from kalm.envs import get_suite

    return get_suite("clevr")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
