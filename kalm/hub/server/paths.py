"""Where the local hub keeps its store by default (stdlib only)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ROOT = "~/.cache/kalm/hub"


def default_root() -> Path:
    """The store folder: ``$KALM_HUB_ROOT`` if set, else ``$XDG_CACHE_HOME/kalm/hub`` or
    ``~/.cache/kalm/hub``."""
    if os.environ.get("KALM_HUB_ROOT"):
        return Path(os.environ["KALM_HUB_ROOT"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME")
    return Path(cache).expanduser() / "kalm" / "hub" if cache else Path(DEFAULT_ROOT).expanduser()
