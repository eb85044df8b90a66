from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def embedding_cache(request: pytest.FixtureRequest) -> str:
    """The goal-embedding cache folder shared with tests/rl (persists across runs of this checkout)."""
    return str(request.config.cache.mkdir("kalm-cache") / "goal_embeddings")
