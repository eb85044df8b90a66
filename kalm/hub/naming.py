"""The grammar of what users and tags name: ``REPO[@REVISION]`` references and ``vMAJOR.MINOR`` versions.

Pure string rules, no Hub call (:mod:`kalm.hub.versions` asks the Hub which versions exist).
"""

from __future__ import annotations

import re
from pathlib import Path

from kalm.errors import HubError

VERSION_RE = re.compile(r"^v(\d+)\.(\d+)$")


def split_revision(reference: str) -> tuple[str, str | None]:
    """``"ns/name@v1.0"`` -> ``("ns/name", "v1.0")``; a reference without ``@`` or naming an existing local
    path (which may contain ``@``) comes back whole, with no revision."""
    if "@" not in reference or Path(reference).expanduser().exists():
        return reference, None
    repo, revision = reference.rsplit("@", 1)
    return repo, revision or None


def is_version(tag: str) -> bool:
    """Whether ``tag`` is a content version ``vMAJOR.MINOR``."""
    return VERSION_RE.match(tag) is not None


def check_version(version: str) -> str:
    """``version`` itself, or a ``HubError`` when it is not of the form ``vMAJOR.MINOR``."""
    if not is_version(version):
        raise HubError(f"version {version!r} is not of the form vMAJOR.MINOR (e.g. v1.0)")
    return version


def version_key(tag: str) -> tuple[int, int]:
    """``(major, minor)`` of a version tag, for sorting."""
    match = VERSION_RE.match(tag)
    assert match, tag
    return int(match.group(1)), int(match.group(2))


def next_version(tags: list[str], bump: str = "minor") -> str:
    """The next free ``vMAJOR.MINOR``: ``v1.0`` first, then a minor (or major) bump of the highest."""
    versions = sorted(version_key(tag) for tag in tags if is_version(tag))
    if not versions:
        return "v1.0"
    major, minor = versions[-1]
    return f"v{major + 1}.0" if bump == "major" else f"v{major}.{minor + 1}"


def tag_order(tag: str) -> tuple[int, int, int, str]:
    """Sort key putting version tags first, oldest version first, then any other tag by name."""
    return (0, *version_key(tag), tag) if is_version(tag) else (1, 0, 0, tag)
