"""The one patch of the HF clients (kalm.hub.hf_config): it must leave already-imported clients exactly as a
fresh import under the same environment variables would be. These tests fail when huggingface_hub or datasets
rename an attribute kalm sets, or derive it differently from the variables."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap

import pytest

from kalm.hub import hf_config

DUMP = """
    import json, os, sys
    import huggingface_hub.constants, datasets.config
    {configure}
    tables = (hf_config.ENDPOINT_ATTRIBUTES, hf_config.CACHE_ATTRIBUTES)
    shown = lambda value: repr(sorted(value) if isinstance(value, frozenset) else value)  # sets: any order
    values = {{f"{{module}}.{{name}}": shown(getattr(sys.modules[module], name, "<missing>"))
              for table in tables for module, names in table.items() for name in names}}
    from huggingface_hub import HfApi, hf_hub_url
    values["HfApi().endpoint"] = HfApi().endpoint
    values["hf_hub_url"] = hf_hub_url("ns/name", "f.json", repo_type="dataset", revision="v1.0")
    env = {{key: value for key, value in os.environ.items() if key.startswith(("HF_", "TRANSFORMERS_"))}}
    print(json.dumps({{"values": values, "env": env}}))
"""


def _run(code: str, env: dict[str, str]) -> dict:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HF_", "KALM_HUB", "TRANSFORMERS_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_patched_clients_equal_a_fresh_import_under_the_same_variables(tmp_path):
    url = "http://127.0.0.1:45678"
    patched = _run(
        DUMP.format(
            configure=(
                "from kalm.hub import hf_config\n"
                f"    hf_config.point_clients_at({url!r}, local=True)\n"
                f"    hf_config.use_cache_home({str(tmp_path / 'hf')!r})"
            )
        ),
        {"HF_HUB_OFFLINE": "1"},
    )
    fresh = _run(DUMP.format(configure="from kalm.hub import hf_config"), patched["env"])
    assert "<missing>" not in json.dumps(fresh["values"])  # every attribute kalm sets still exists
    assert patched["values"] == fresh["values"]
    assert patched["values"]["HfApi().endpoint"] == url and patched["values"]["hf_hub_url"].startswith(
        url + "/"
    )
    assert patched["values"]["huggingface_hub.constants.HF_HUB_OFFLINE"] == "False"


def test_the_download_chunk_size_is_still_what_hf_hub_download_reads():
    import huggingface_hub.constants
    import huggingface_hub.file_download

    assert isinstance(huggingface_hub.constants.DOWNLOAD_CHUNK_SIZE, int)
    assert "chunk_size=constants.DOWNLOAD_CHUNK_SIZE" in inspect.getsource(huggingface_hub.file_download)
    assert hf_config.LOCAL_DOWNLOAD_CHUNK < 10 * 1024 * 1024


def test_only_listed_attributes_are_ever_set():
    import huggingface_hub.constants

    with pytest.raises(AssertionError, match="NOT_LISTED"):
        hf_config._set_imported(hf_config.HUB, {"NOT_LISTED": 1}, hf_config.ENDPOINT_ATTRIBUTES)
    assert not hasattr(huggingface_hub.constants, "NOT_LISTED")
