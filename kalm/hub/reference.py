"""Where an artefact a user names lives: a local folder, or a Hub repo ``namespace/name`` at a revision.

Every input that accepts "a folder or ``REPO[@REV]``" (rollout datasets, grounded models, policies) resolves
it here, so the rules and their errors are the same everywhere: an existing folder wins (its name may hold
``@``); a value that looks like a path (``.``, ``/``, ``~``) must be an existing folder; anything else is a
repo id ``namespace/name``, optionally ``@revision``. Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kalm.errors import ConfigError
from kalm.hub.naming import split_revision

PATH_PREFIXES = (".", "/", "~")
"""A reference starting with one of these names a folder, never a repo."""


@dataclass(frozen=True)
class Location:
    """A resolved reference: ``folder`` for a local folder, else ``repo_id`` at ``revision`` (``None``:
    latest)."""

    folder: Path | None
    repo_id: str | None = None
    revision: str | None = None


def locate(
    reference: str | Path,
    revision: str | None = None,
    *,
    what: str,
    hint: str = "expected a folder or a Hub repo REPO[@REV]",
) -> Location:
    """Resolve a folder or ``REPO[@REV]`` (see the module docstring); an explicit ``revision`` wins over
    ``@REV``.

    Args:
        reference: the folder or repo reference as the user gave it.
        revision: a revision given separately (kept as ``Location.revision`` for a folder too).
        what: what is referenced, for errors (``dataset``, ``grounded model``, ``policy``).
        hint: the end of the error for a path that does not exist, e.g. how to make the folder.

    Raises:
        ConfigError: a path-like reference that is not an existing folder, or a repo id not of the form
            ``namespace/name``.
    """
    text = str(reference)
    folder = Path(text).expanduser()
    if folder.is_dir():
        return Location(folder, None, revision)
    if text.startswith(PATH_PREFIXES):
        raise ConfigError(f"{what} {text!r}: no such folder ({hint})")
    repo, at = split_revision(text)
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ConfigError(
            f"{what} {text!r} is neither an existing folder nor a Hub repo id "
            "of the form namespace/name[@revision]"
        )
    return Location(None, repo, revision if revision is not None else at)
