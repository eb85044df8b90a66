"""The HF clients' import-time switches: set through their environment variables, and the one patch kalm
keeps.

``huggingface_hub`` (``huggingface_hub.constants``) and ``datasets`` (``datasets.config``) read the endpoint,
the Xet and offline switches and the cache folders from the environment ONCE, when they are imported;
transformers and peft go through ``huggingface_hub``. The public ways to choose them are

1. the environment variables, set before the first import (and inherited by child processes), and
2. per call: ``HfApi(endpoint=...)``, ``hf_hub_download(endpoint=..., cache_dir=...)``,
   ``snapshot_download(endpoint=...)``, which is how kalm's own calls name their endpoint.

Neither reaches a client that is already imported and then called without those arguments:
``datasets.load_dataset(repo_id)``, ``Dataset.push_to_hub``, ``from_pretrained(repo_id)``, a bare
``HfApi()`` all read the module attributes at call time, and ``datasets`` has no per-call endpoint at
all. kalm learns the local server's URL only once it has started (on a free port), which is usually after
those libraries were imported. So, after setting the variables, :func:`point_clients_at` and
:func:`use_cache_home` also give the ALREADY-IMPORTED modules the values a fresh import would have read
from those variables: exactly the attributes in :data:`ENDPOINT_ATTRIBUTES` and :data:`CACHE_ATTRIBUTES`,
nothing else. ``tests/hub/test_hf_config.py`` fails when a library renames one of them or derives it
differently (it compares every patched value with a fresh import under the same variables).

One more attribute is not derived from the environment: ``DOWNLOAD_CHUNK_SIZE`` (see
:data:`LOCAL_DOWNLOAD_CHUNK`), set for local servers only.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)
HUB, DATASETS = "huggingface_hub.constants", "datasets.config"
ENDPOINT_ATTRIBUTES = {
    HUB: ("ENDPOINT", "HUGGINGFACE_CO_URL_TEMPLATE", "HF_URL_HOSTS", "HF_HUB_DISABLE_XET", "HF_HUB_OFFLINE"),
    DATASETS: ("HF_ENDPOINT", "HUB_DATASETS_URL", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"),
}
CACHE_ATTRIBUTES = {
    HUB: ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE"),
    DATASETS: (
        "HF_CACHE_HOME",
        "HF_DATASETS_CACHE",
        "HF_MODULES_CACHE",
        "DOWNLOADED_DATASETS_PATH",
        "EXTRACTED_DATASETS_PATH",
    ),
}
# hf_hub_download hands what it receives to the file in DOWNLOAD_CHUNK_SIZE pieces (10 MiB); httpx assembles
# each piece in a BytesIO and slices it out again, and on loopback these copies and the fresh memory pages
# they touch cost as much as the transfer (a 100 MB local download: ~0.5 s -> ~0.27 s with 1 MiB). No
# environment variable or argument sets it; over a network the transfer dominates, so the real Hub keeps
# the library's default.
LOCAL_DOWNLOAD_CHUNK = 1 << 20


def point_clients_at(url: str, *, local: bool) -> None:
    """Point huggingface_hub and datasets (imported or not, and child processes) at the Hub ``url``.

    For a local server also switch Xet off (the server accepts Xet uploads too, but Git LFS is faster on
    loopback: about 4x for incompressible files, which Xet chunks and hashes) and the offline switches
    off (loopback traffic only).
    """
    os.environ["HF_ENDPOINT"] = url
    if local:
        os.environ.update(
            HF_HUB_DISABLE_XET="1", HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0", TRANSFORMERS_OFFLINE="0"
        )
    hub: dict[str, Any] = {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
    }
    constants = sys.modules.get(HUB)
    if constants is not None:
        hub["HF_URL_HOSTS"] = frozenset(constants.HF_URL_HOSTS | {(urlsplit(url).hostname or "").lower()})
    datasets: dict[str, Any] = {
        "HF_ENDPOINT": url,
        "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
    }
    if local:
        hub.update(HF_HUB_DISABLE_XET=True, HF_HUB_OFFLINE=False)
        datasets.update(HF_HUB_OFFLINE=False, HF_DATASETS_OFFLINE=False)
    _set_imported(HUB, hub, ENDPOINT_ATTRIBUTES)
    _set_imported(DATASETS, datasets, ENDPOINT_ATTRIBUTES)
    if local:  # imported here if it was not yet: it reads the variables set above
        import huggingface_hub.constants

        huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE = LOCAL_DOWNLOAD_CHUNK
    filesystem = sys.modules.get("huggingface_hub.hf_file_system")
    if filesystem is not None:
        filesystem.HfFileSystem.clear_instance_cache()  # instances remember the endpoint they were made for


def use_cache_home(folder: str | Path) -> None:
    """Make the HF clients cache under ``folder`` (like ``HF_HOME``), also when they are already imported."""
    home = Path(folder)
    os.environ.update(
        HF_HOME=str(home), HF_HUB_CACHE=str(home / "hub"), HF_DATASETS_CACHE=str(home / "datasets")
    )
    _set_imported(
        HUB,
        {
            "HF_HOME": str(home),
            "HF_HUB_CACHE": str(home / "hub"),
            "HUGGINGFACE_HUB_CACHE": str(home / "hub"),
            "HF_ASSETS_CACHE": str(home / "assets"),
            "HF_XET_CACHE": str(home / "xet"),
        },
        CACHE_ATTRIBUTES,
    )
    downloads = home / "datasets" / "downloads"
    _set_imported(
        DATASETS,
        {
            "HF_CACHE_HOME": str(home),
            "HF_DATASETS_CACHE": home / "datasets",
            "HF_MODULES_CACHE": home / "modules",
            "DOWNLOADED_DATASETS_PATH": downloads,
            "EXTRACTED_DATASETS_PATH": downloads / "extracted",
        },
        CACHE_ATTRIBUTES,
    )


def _set_imported(
    module_name: str, values: Mapping[str, Any], allowed: Mapping[str, tuple[str, ...]]
) -> None:
    """Set ``values`` on ``module_name`` if it is imported: only attributes that the table names and that
    exist."""
    module = sys.modules.get(module_name)
    if module is None:
        return  # not imported yet: it will read the environment variables set above
    for name, value in values.items():
        assert name in allowed[module_name], f"{module_name}.{name} is not in kalm.hub.hf_config's tables"
        if not hasattr(module, name):
            logger.warning(
                "%s.%s no longer exists; the installed version is not the one kalm pins", module_name, name
            )
            continue
        setattr(module, name, value)
