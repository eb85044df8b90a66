"""``REPO[@REVISION]`` references to Hub artefacts, as users write them on the command line."""

from __future__ import annotations

from pathlib import Path


def split_revision(reference: str) -> tuple[str, str | None]:
    """``"ns/name@v1.0"`` -> ``("ns/name", "v1.0")``; a reference without ``@`` or naming an existing local
    path (which may contain ``@``) comes back whole, with no revision."""
    if "@" not in reference or Path(reference).expanduser().exists():
        return reference, None
    repo, revision = reference.rsplit("@", 1)
    return repo, revision or None
