"""Shared fixtures. The default suite is offline and CPU-only; ``-m slow`` runs the long tier."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def clevr():
    """The CLEVR-Robot environment suite."""
    from kalm.envs import get_suite

    return get_suite("clevr")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
