"""Views of a snapshot in the real Hub's JSON shapes: tree entries, paths-info, repo info (stdlib only)."""

from __future__ import annotations

import hashlib
from typing import Any

from kalm.hub.blobs import lfs_pointer
from kalm.hub.store import Commit, FileEntry, Repo
from kalm.hub.validate import StoreError


def file_json(path: str, entry: FileEntry) -> dict[str, Any]:
    """A ``RepoFile`` as the Hub lists it (``lfs`` only for LFS files)."""
    data: dict[str, Any] = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
    if entry.lfs:
        data["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": len(lfs_pointer(entry.sha256, entry.size))}
    return data


def folder_json(files: dict[str, FileEntry], path: str) -> dict[str, Any]:
    """A ``RepoFolder``; its oid hashes the paths and oids below it (stable for equal content)."""
    digest = hashlib.sha1()
    for name in sorted(name for name in files if name.startswith(path + "/")):
        digest.update(f"{name}\0{files[name].oid}\n".encode())
    return {"type": "directory", "oid": digest.hexdigest(), "size": 0, "path": path}


def tree_entries(files: dict[str, FileEntry], prefix: str, *, recursive: bool, repo_id: str) -> list[dict[str, Any]]:
    """Files and folders below ``prefix`` (``""`` for the root): direct children, or all when ``recursive``."""
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
    meta = repo.meta
    siblings = []
    for path, entry in sorted(commit.files.items()):
        sibling: dict[str, Any] = {"rfilename": path}
        if blobs:
            sibling.update(size=entry.size, blobId=entry.oid)
            if entry.lfs:
                pointer = len(lfs_pointer(entry.sha256, entry.size))
                sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size, "pointerSize": pointer}
        siblings.append(sibling)
    card = _card_data(repo, commit)
    info = {
        "_id": hashlib.sha1(f"{repo.type}/{repo.id}".encode()).hexdigest()[:24],
        "id": repo.id,
        "author": repo.id.split("/")[0],
        "sha": commit.id,
        "lastModified": commit.date,
        "createdAt": meta["created_at"],
        "private": bool(meta.get("private")),
        "gated": False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": list(card.get("tags") or []) if card else [],
        "cardData": card,
        "siblings": siblings,
        "usedStorage": sum(entry.size for entry in commit.files.values()),
    }
    if repo.type == "model":
        info["modelId"] = repo.id
    return info


def _card_data(repo: Repo, commit: Commit) -> dict[str, Any] | None:
    """The YAML front matter of README.md, when there is one and PyYAML is installed."""
    entry = commit.files.get("README.md")
    if entry is None or entry.size > 1 << 20:
        return None
    text = repo.blobs.read_bytes(entry.sha256).decode("utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    front, _, _ = text[3:].partition("\n---")
    try:
        import yaml

        data = yaml.safe_load(front)
    except Exception:  # noqa: BLE001 - a broken card must not break repo_info
        return None
    return data if isinstance(data, dict) else None
