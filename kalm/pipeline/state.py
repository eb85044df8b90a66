"""Which stages of a run are done: ``<run>/stages.json``, keyed by each stage's resolved inputs.

A stage records its output under a key hashed from its configuration and the artefacts it consumed
(repo ids and commit shas). Re-running with the same resolved config finds the key and skips the stage;
changing a stage's settings or an upstream artefact changes the key and the stage runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from kalm.hub.provenance import machine


def stage_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunState:
    """The finished stages of one run folder (written atomically after every stage)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "stages.json"
        self.stages: dict[str, dict[str, Any]] = (
            json.loads(self.path.read_text()) if self.path.exists() else {}
        )

    def done(self, stage: str, key: str) -> dict[str, Any] | None:
        """The recorded output of ``stage`` if it finished with ``key``."""
        entry = self.stages.get(stage)
        return entry["output"] if entry and entry["key"] == key else None

    def record(self, stage: str, key: str, output: dict[str, Any], seconds: float) -> None:
        """Record ``stage`` as done with ``key``, with its wall time and the machine it ran on."""
        self.stages[stage] = {
            "key": key,
            "output": output,
            "seconds": round(seconds, 1),
            "machine": machine(),
        }
        partial = self.path.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(json.dumps(self.stages, indent=2, sort_keys=True) + "\n")
        partial.replace(self.path)

    def seconds(self, stage: str) -> float | None:
        entry = self.stages.get(stage)
        return entry["seconds"] if entry else None

    def machine(self, stage: str) -> dict[str, Any] | None:
        """The machine ``stage`` ran on (``None`` when it has not run, or ran before runs recorded it)."""
        entry = self.stages.get(stage)
        return entry.get("machine") if entry else None
