"""What a publish records about where its content came from: the software that made it and the pinned inputs.

Keys the cards render (all optional; any other key is kept as is): ``source_datasets`` (list of
``{"repo_id", "revision"}``), ``generator_model`` (``{"repo_id", "revision"}``), ``lineage``, ``backbone``,
``collector``, ``goal_encoder``, ``seed``, ``config``. :func:`pin_sources` adds the commit sha
(``"commit"``) of every source dataset and of the generator model at publish time.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
import uuid
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import huggingface_hub
from huggingface_hub import HfApi

import kalm
from kalm.hub.versions import resolve_commit

MODEL_PROVENANCE = "kalm_provenance.json"
"""The provenance file beside a published model's files (datasets keep theirs in ``meta/info.json``)."""
RUN_PROVENANCE = "provenance.json"
"""The provenance file a run (``kalm learn fit``, ``kalm run``) writes next to its outputs."""
PACKAGES = (
    "kalm",
    "torch",
    "lightning",
    "transformers",
    "peft",
    "torchrl",
    "tensordict",
    "sentence-transformers",
    "datasets",
    "huggingface-hub",
    "mujoco",
    "metaworld",
    "gymnasium",
)
"""The distributions whose versions a run records (``None`` for those not installed)."""


def kalm_provenance() -> dict[str, Any]:
    """What every publish records about the software that made it (``publish_id`` makes every commit
    unique)."""
    return {
        "publish_id": uuid.uuid4().hex,
        "kalm_version": kalm.__version__,
        "kalm_git_sha": git_sha(Path(kalm.__file__).resolve().parents[1]),
        "huggingface_hub_version": huggingface_hub.__version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """The installed version of each distribution in ``packages`` (``None`` when it is not installed)."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def machine() -> dict[str, Any]:
    """The hardware a run's timings and floating-point results belong to: the CPU's model name, its logical
    cores, the threads and the vector instruction set torch uses, and the accelerator (``None`` without one).
    Grounding on two CPUs with other instruction sets is not bit-for-bit the same computation."""
    import torch

    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def describe_machine(facts: dict[str, Any]) -> str:
    """:func:`machine`'s facts in one line, as a report prints them."""
    accelerator = facts.get("accelerator") or "no accelerator"
    return (
        f"{facts.get('cpu') or 'unknown CPU'}, {facts.get('cpus')} logical CPUs (torch: "
        f"{facts.get('torch_threads')} threads, {facts.get('cpu_capability')}), {accelerator}"
    )


def _cpu_model() -> str | None:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def run_provenance() -> dict[str, Any]:
    """What a run writes to its ``provenance.json`` about the software and the machine:
    :func:`kalm_provenance`, the Python version, :func:`package_versions` and :func:`machine`; the caller
    adds its inputs and settings."""
    return {
        **kalm_provenance(),
        "python": platform.python_version(),
        "packages": package_versions(),
        "machine": machine(),
    }


def write_run_provenance(folder: Path, **fields: Any) -> Path:
    """Write ``folder/provenance.json``: :func:`run_provenance` plus ``fields`` (inputs, steps, config...)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_PROVENANCE
    path.write_text(json.dumps({**run_provenance(), **fields}, indent=2, default=str) + "\n")
    return path


def git_sha(folder: Path) -> str | None:
    """The commit checked out in ``folder`` (``None`` outside a git checkout or without git)."""
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def pin_sources(api: HfApi, provenance: dict[str, Any]) -> dict[str, Any]:
    """``provenance`` with the commit sha of every source dataset and of the generator model that lacks
    one."""
    pinned = dict(provenance)
    sources = []
    for source in provenance.get("source_datasets") or []:
        source = dict(source)
        source.setdefault("commit", resolve_commit(api, source["repo_id"], source.get("revision"), "dataset"))
        sources.append(source)
    if sources:
        pinned["source_datasets"] = sources
    model = provenance.get("generator_model")
    if model and "commit" not in model:
        pinned["generator_model"] = {
            **model,
            "commit": resolve_commit(api, model["repo_id"], model.get("revision"), "model"),
        }
    return pinned
