"""Helpers of the plugin tests: build the example plugin into a wheel, or write a bare ``.dist-info``."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent / "plugin_example"
"""The example plugin package of README's "Adding an environment" (``kalm-grid``, environment ``grid``)."""


def build_example_plugin(work: Path) -> Path:
    """Build the example plugin into a wheel and unpack it into ``work/site`` (a folder for ``sys.path``).

    The package is copied out of the checkout first, so nothing of kalm's tree is on the plugin's path and
    the build leaves no files behind in it.
    """
    source = work / "kalm-grid"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--wheel-dir",
            str(work / "dist"),
            str(source),
        ],
        check=True,
    )
    wheel = next((work / "dist").glob("kalm_grid-*.whl"))
    site = work / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def write_distribution(
    site: Path,
    name: str,
    entry_points: dict[str, str],
    *,
    version: str = "1.0",
    modules: dict[str, str] | None = None,
) -> Path:
    """A minimal installed distribution in ``site``: ``METADATA`` and ``kalm.envs`` entry points, plus
    modules."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[kalm.envs]\n{lines}")
    for module, text in (modules or {}).items():
        (site / f"{module}.py").write_text(text)
    return info
