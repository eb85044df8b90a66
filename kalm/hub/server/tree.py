"""Views of a snapshot in the real Hub's JSON shapes: tree entries, paths-info, repo info (stdlib only)."""

from __future__ import annotations

import copy
import functools
import hashlib
from pathlib import Path
from typing import Any

from kalm.hub.server.blobs import lfs_pointer
from kalm.hub.server.objects import Commit, FileEntry
from kalm.hub.server.repo import Repo
from kalm.hub.server.validate import StoreError

TAG_KEYS = (
    "license",
    "language",
    "task_categories",
    "task_ids",
    "size_categories",
    "multilinguality",
    "language_creators",
    "annotations_creators",
    "source_datasets",
    "base_model",
)


def file_json(path: str, entry: FileEntry) -> dict[str, Any]:
    """A ``RepoFile`` as the Hub lists it (``lfs`` only for LFS files)."""
    data: dict[str, Any] = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
    if entry.lfs:
        data["lfs"] = {
            "oid": entry.sha256,
            "size": entry.size,
            "pointerSize": len(lfs_pointer(entry.sha256, entry.size)),
        }
    return data


def folder_json(files: dict[str, FileEntry], path: str) -> dict[str, Any]:
    """A ``RepoFolder``; its oid hashes the paths and oids below it (stable for equal content)."""
    digest = hashlib.sha1()
    for name in sorted(name for name in files if name.startswith(path + "/")):
        digest.update(f"{name}\0{files[name].oid}\n".encode())
    return {"type": "directory", "oid": digest.hexdigest(), "size": 0, "path": path}


def tree_entries(
    files: dict[str, FileEntry], prefix: str, *, recursive: bool, repo_id: str
) -> list[dict[str, Any]]:
    """Files and folders below ``prefix`` (``""`` for the root): direct children, or all when
    ``recursive``."""
    base = prefix + "/" if prefix else ""
    below = sorted(name for name in files if name.startswith(base))
    if prefix and not below:
        raise StoreError(404, f"Entry {prefix!r} not found in {repo_id!r} (or it is a file)", "EntryNotFound")
    folders: set[str] = set()
    entries = []
    for name in below:
        parts = name[len(base) :].split("/")
        depth = len(parts) if recursive else 1
        for level in range(1, min(depth, len(parts) - 1) + 1):
            folders.add(base + "/".join(parts[:level]))
        if recursive or len(parts) == 1:
            entries.append(file_json(name, files[name]))
    return [folder_json(files, folder) for folder in sorted(folders)] + entries


def path_info(files: dict[str, FileEntry], path: str) -> dict[str, Any] | None:
    """The entry at ``path`` (file or folder), or ``None`` when absent (the Hub then omits it)."""
    path = path.strip("/")
    if path in files:
        return file_json(path, files[path])
    if any(name.startswith(path + "/") for name in files):
        return folder_json(files, path)
    return None


def last_commits(repo: Repo, head: Commit, paths: list[str]) -> dict[str, Commit]:
    """For each path, the oldest commit of the unbroken run (from ``head`` back) in which it looked as now."""
    current = {path: _signature(head.files, path) for path in paths}
    found = {path: head for path in paths}
    open_paths = set(paths)
    commit = head
    while open_paths and commit.parents:
        parent = repo.commit(commit.parents[0])
        for path in list(open_paths):
            if _signature(parent.files, path) == current[path]:
                found[path] = parent
            else:
                open_paths.discard(path)
        commit = parent
    return found


def _signature(files: dict[str, FileEntry], path: str) -> tuple[tuple[str, str], ...]:
    if path in files:
        return ((path, files[path].oid),)
    return tuple((name, entry.oid) for name, entry in sorted(files.items()) if name.startswith(path + "/"))


def repo_info(repo: Repo, commit: Commit, *, blobs: bool) -> dict[str, Any]:
    """``model_info``/``dataset_info`` fields for the snapshot ``commit``."""
    info = listing_entry(repo, repo.meta, commit)
    if blobs:
        for sibling in info["siblings"]:
            entry = commit.files[sibling["rfilename"]]
            sibling.update(size=entry.size, blobId=entry.oid)
            if entry.lfs:
                pointer = len(lfs_pointer(entry.sha256, entry.size))
                sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size, "pointerSize": pointer}
    return info


LISTING_FIELDS = frozenset(
    {
        "_id",
        "id",
        "author",
        "sha",
        "lastModified",
        "createdAt",
        "private",
        "gated",
        "disabled",
        "downloads",
        "likes",
        "trendingScore",
        "tags",
        "cardData",
        "siblings",
        "usedStorage",
        "modelId",
    }
)  # the keys of listing_entry


def listing_entry(repo: Repo, meta: dict[str, Any], commit: Commit) -> dict[str, Any]:
    """Every field the Hub gives a repo in listings and info, for the snapshot ``commit``."""
    card = _card_data(repo, commit)
    info = {
        "_id": hashlib.sha1(f"{repo.type}/{repo.id}".encode()).hexdigest()[:24],
        "id": repo.id,
        "author": repo.id.split("/")[0],
        "sha": commit.id,
        "lastModified": commit.date,
        "createdAt": meta["created_at"],
        "private": bool(meta.get("private")),
        "gated": meta.get("gated") or False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "trendingScore": 0,
        "tags": repo_tags(card),
        "cardData": card,
        "siblings": [{"rfilename": path} for path in sorted(commit.files)],
        "usedStorage": sum(entry.size for entry in commit.files.values()),
    }
    if repo.type == "model":
        info["modelId"] = repo.id
    return info


def repo_tags(card: dict[str, Any] | None) -> list[str]:
    """The tags the Hub derives from a card: its ``tags``, ``key:value`` for :data:`TAG_KEYS`, and the
    plain library and pipeline names, so that ``list_datasets(filter=...)`` finds what the Hub would."""
    if not card:
        return []
    tags = [str(tag) for tag in _as_list(card.get("tags"))]
    for key in TAG_KEYS:
        tags += [f"{key}:{value}" for value in _as_list(card.get(key))]
    tags += [f"dataset:{value}" for value in _as_list(card.get("datasets"))]
    tags += [str(value) for key in ("library_name", "pipeline_tag") for value in _as_list(card.get(key))]
    return list(dict.fromkeys(tags))


def _as_list(value: Any) -> list[Any]:
    if value is None or isinstance(value, dict):
        return []
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, (str, int, float))]


def _card_data(repo: Repo, commit: Commit) -> dict[str, Any] | None:
    """The YAML front matter of README.md (a fresh copy), when there is one and PyYAML is installed."""
    entry = commit.files.get("README.md")
    if entry is None or entry.size > 1 << 20:
        return None
    try:
        card = _parse_card(str(repo.blobs.path(entry.sha256)))
    except OSError:  # a missing blob: reported by resolve and fsck, not by the card
        return None
    return copy.deepcopy(card)


@functools.lru_cache(maxsize=1024)
def _parse_card(blob_path: str) -> dict[str, Any] | None:
    """Front matter of one README blob (blobs are content-addressed, so the answer never changes)."""
    text = Path(blob_path).read_bytes().decode("utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    front, _, _ = text[3:].partition("\n---")
    try:
        import yaml

        data = yaml.safe_load(front)
    except Exception:  # noqa: BLE001 - a broken card must not break repo_info
        return None
    return data if isinstance(data, dict) else None
