"""The one place that decides the endpoint: env switches set before and after the clients' import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _run(code: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "KALM_HUB"))}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def test_default_is_a_local_server_under_kalm_hub_root(tmp_path):
    out = _run(
        """
        import huggingface_hub.constants as c, datasets.config as d   # imported first: patched afterwards
        from kalm.hub.endpoint import ensure_endpoint
        ep = ensure_endpoint()
        assert ensure_endpoint() is ep
        print(ep.url, ep.local, c.ENDPOINT, d.HF_ENDPOINT, c.HF_HUB_DISABLE_XET, c.HF_HUB_OFFLINE)
    """,
        KALM_HUB_ROOT=str(tmp_path / "root"),
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
    )
    url = out[0]
    assert url.startswith("http://127.0.0.1:") and out[1:] == ["True", url, url, "True", "False"]
    assert (tmp_path / "root" / "FORMAT").read_text().startswith("kalm-hub-store 1")


def test_a_named_endpoint_is_used_as_is(tmp_path):
    out = _run(
        """
        from kalm.hub.endpoint import ensure_endpoint
        ep = ensure_endpoint()
        import huggingface_hub.constants as c
        print(ep.url, ep.local, ep.token, c.ENDPOINT, c.HF_HUB_DISABLE_XET)
    """,
        KALM_HUB_ENDPOINT="https://huggingface.co",
        HF_TOKEN="hf_user_token",
        HF_HOME=str(tmp_path / "hf"),
    )
    assert out == ["https://huggingface.co", "False", "hf_user_token", "https://huggingface.co", "False"]
