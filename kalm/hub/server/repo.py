"""One repo of the local Hub server's store: its snapshots, revisions, refs and pull requests (stdlib only).

Pull requests are the Hub's ``refs/pr/<number>``: a commit with ``create_pr`` opens the next number on top
of the base branch's head and never moves the base branch; later commits to ``refs/pr/<number>`` extend it.

Atomicity: blobs and commit objects are written (and fsynced) before the commit becomes visible, and it
becomes visible only when ``refs.json`` is replaced with ``os.replace`` while the repo's lock is held
(a ``threading.Lock`` per repo plus ``fcntl.flock``, so several server processes may share a root). A
crash at any point leaves the previous ``refs.json``, hence the previous revision, intact. Writers
always apply their operations to the head read under the lock, so concurrent commits are rebased and
never lost; a commit that names a ``parentCommit`` other than the head is refused (412).

Damage: a repo whose ``repo.json``, ``refs.json`` or a commit object it needs is missing or unreadable
raises :func:`kalm.hub.server.validate.repo_damaged` on its own calls only; listings skip it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from kalm.hub.server.blobs import BlobStore
from kalm.hub.server.objects import (
    Commit,
    FileEntry,
    Operation,
    commit_id,
    dump,
    locked,
    now_iso,
    write_atomic,
)
from kalm.hub.server.validate import (
    COMMIT_RE,
    PULL_RE,
    StoreError,
    check_path,
    check_ref_name,
    entry_not_found,
    repo_damaged,
    revision_not_found,
)

GATED_VALUES = (False, "auto", "manual")


def read_json(path: Path, repo_id: str) -> Any:
    """A JSON file of a repo; :func:`repo_damaged` when it is missing or unreadable."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise repo_damaged(repo_id, f"{path.name} is missing") from None
    except (OSError, ValueError, RecursionError) as error:
        raise repo_damaged(repo_id, f"{path.name} is unreadable: {type(error).__name__}") from None


def read_refs(path: Path, repo_id: str) -> dict[str, Any]:
    """``refs.json`` checked for its shape (``main`` present, every target a commit id)."""
    refs = read_json(path, repo_id)
    try:
        branches, tags, pulls = refs["branches"], refs["tags"], refs.setdefault("pulls", {})
        assert isinstance(branches, dict) and isinstance(tags, dict) and isinstance(pulls, dict)
        assert "main" in branches
        targets = [
            *branches.values(),
            *(t["target"] for t in tags.values()),
            *(p["target"] for p in pulls.values()),
        ]
        assert all(isinstance(target, str) and COMMIT_RE.match(target) for target in targets)
    except (AssertionError, KeyError, TypeError):
        raise repo_damaged(repo_id, "refs.json does not have the shape of a refs file") from None
    return refs


class Repo:
    """One repo folder: read snapshots, resolve revisions, and change refs under the repo lock."""

    def __init__(self, path: Path, repo_type: str, repo_id: str, blobs: BlobStore) -> None:
        self.path, self.type, self.id, self.blobs = path, repo_type, repo_id, blobs

    @property
    def meta(self) -> dict[str, Any]:
        meta = read_json(self.path / "repo.json", self.id)
        if not isinstance(meta, dict) or not isinstance(meta.get("created_at"), str):
            raise repo_damaged(self.id, "repo.json does not have the shape of a repo file")
        return meta

    def refs(self) -> dict[str, Any]:
        return read_refs(self.path / "refs.json", self.id)

    def commit(self, commit_id_: str) -> Commit:
        """A commit this repo's refs or history need; damaged when its object is missing or unreadable."""
        data = read_json(self.path / "objects" / f"{commit_id_}.json", self.id)
        try:
            commit = Commit.from_dict(data)
        except ValueError as error:
            raise repo_damaged(self.id, f"commit object {commit_id_} is unreadable: {error}") from None
        if commit.id != commit_id_:
            raise repo_damaged(self.id, f"commit object {commit_id_} names itself {commit.id}")
        return commit

    def resolve(self, revision: str) -> str:
        """The commit id a branch, tag, ``refs/heads|tags/...``, ``refs/pr/N`` name or commit id points to."""
        refs = self.refs()
        pull = PULL_RE.match(revision)
        if pull and pull[1] in refs["pulls"]:
            return refs["pulls"][pull[1]]["target"]
        for prefix, kind in (("refs/heads/", "branches"), ("refs/tags/", "tags"), ("", None)):
            if not revision.startswith(prefix):
                continue
            name = revision[len(prefix) :]
            if kind in (None, "branches") and name in refs["branches"]:
                return refs["branches"][name]
            if kind in (None, "tags") and name in refs["tags"]:
                return refs["tags"][name]["target"]
        if COMMIT_RE.match(revision) and (self.path / "objects" / f"{revision}.json").is_file():
            return revision
        raise revision_not_found(self.id, revision)

    def snapshot(self, revision: str) -> Commit:
        return self.commit(self.resolve(revision))

    def history(self, revision: str) -> list[Commit]:
        """Commits reachable from ``revision`` by first parents, newest first."""
        commits = [self.snapshot(revision)]
        while commits[-1].parents:
            commits.append(self.commit(commits[-1].parents[0]))
        return commits

    def writable_ref(self, revision: str, refs: dict[str, Any] | None = None) -> tuple[str, str]:
        """``("branches", name)`` or ``("pulls", number)``: the ref a commit to ``revision`` moves
        (404/400)."""
        refs = self.refs() if refs is None else refs
        name = revision[len("refs/heads/") :] if revision.startswith("refs/heads/") else revision
        if name in refs["branches"]:
            return "branches", name
        pull = PULL_RE.match(revision)
        if pull and pull[1] in refs["pulls"]:
            return "pulls", pull[1]
        self.resolve(revision)  # 404 for an unknown revision
        raise StoreError(
            400,
            f"Revision {revision!r} of {self.id!r} is not a branch or pull request: "
            "commits go to branches (or to refs/pr/N)",
        )

    def apply(
        self,
        revision: str,
        operations: list[Operation],
        *,
        title: str,
        message: str = "",
        author: str = "local",
        parent: str | None = None,
        create_pr: bool = False,
    ) -> tuple[Commit, int | None]:
        """Commit ``operations`` on the head of ``revision`` and move that ref (atomic).

        With ``create_pr`` the commit opens a new pull request against the branch ``revision``, which
        does not move. Returns the commit and the pull request number (``None`` without ``create_pr``).
        """
        with locked(self.path / "lock"):
            refs = self.refs()
            section, key = self.writable_ref(revision, refs)
            if create_pr and section != "branches":
                raise StoreError(400, f"A pull request is opened against a branch, not {revision!r}")
            head = refs["branches"][key] if section == "branches" else refs["pulls"][key]["target"]
            if parent is not None and parent != head:
                raise StoreError(
                    412,
                    f"A commit has happened since {parent} on {revision!r} of {self.id!r}; "
                    f"the head is now {head}. Please refresh and try again.",
                )
            files = dict(self.commit(head).files)
            for operation in operations:
                self._apply_one(files, operation)
            _check_no_file_dir_clash(files)
            new = self._write_commit(files, parents=(head,), title=title, message=message, author=author)
            number = None
            if create_pr:
                number = 1 + max((int(n) for n in refs["pulls"]), default=0)
                refs["pulls"][str(number)] = {
                    "target": new.id,
                    "base": key,
                    "title": title,
                    "status": "open",
                    "date": new.date,
                }
            elif section == "branches":
                refs["branches"][key] = new.id
            else:
                refs["pulls"][key]["target"] = new.id
            write_atomic(self.path / "refs.json", dump(refs))
            return new, number

    def _apply_one(self, files: dict[str, FileEntry], operation: Operation) -> None:
        path = check_path(operation.path.strip("/") if operation.kind == "delete_folder" else operation.path)
        if operation.kind == "add":
            assert operation.entry is not None
            if not self.blobs.has(operation.entry.sha256, operation.entry.size):
                raise StoreError(400, f"LFS object {operation.entry.sha256} for {path!r} was never uploaded")
            files[path] = operation.entry
        elif operation.kind == "delete":
            if files.pop(path, None) is None:
                raise entry_not_found(self.id, path)
        else:
            doomed = [name for name in files if name.startswith(path + "/")]
            if not doomed:
                raise entry_not_found(self.id, path)
            for name in doomed:
                del files[name]

    def _write_commit(
        self, files: dict[str, FileEntry], *, parents: tuple[str, ...], title: str, message: str, author: str
    ) -> Commit:
        body = {
            "parents": list(parents),
            "title": title,
            "message": message,
            "authors": [author],
            "date": now_iso(),
            "files": {path: entry.to_dict() for path, entry in sorted(files.items())},
            "nonce": uuid.uuid4().hex,
        }
        body["id"] = commit_id(body)
        write_atomic(self.path / "objects" / f"{body['id']}.json", dump(body))
        return Commit.from_dict(body)

    def create_tag(self, tag: str, revision: str, message: str = "") -> str:
        """Tag ``revision``; an existing tag is never moved (409), nor may it shadow a branch (409)."""
        check_ref_name(tag, tag=True)
        with locked(self.path / "lock"):
            refs = self.refs()
            if tag in refs["tags"]:
                raise StoreError(409, f"Tag {tag!r} already exists in {self.id!r}; tags are immutable")
            if tag in refs["branches"]:
                raise StoreError(
                    409, f"A branch named {tag!r} exists in {self.id!r}: the tag could not be reached"
                )
            target = self.resolve(revision)
            refs["tags"][tag] = {"target": target, "message": message, "date": now_iso()}
            write_atomic(self.path / "refs.json", dump(refs))
            return target

    def delete_tag(self, tag: str) -> None:
        """Tags are immutable: 404 for a tag that does not exist, 403 for one that does."""
        if tag not in self.refs()["tags"]:
            raise revision_not_found(self.id, tag)
        raise StoreError(
            403, f"Tag {tag!r} of {self.id!r} cannot be deleted: tags on this server are immutable"
        )

    def create_branch(self, branch: str, revision: str | None) -> str:
        """Create ``branch`` at ``revision`` (default: the head of ``main``); 409 if it or a same-named tag
        exists."""
        check_ref_name(branch)
        with locked(self.path / "lock"):
            refs = self.refs()
            if branch in refs["branches"]:
                raise StoreError(409, f"Branch {branch!r} already exists in {self.id!r}")
            if branch in refs["tags"]:
                raise StoreError(
                    409, f"A tag named {branch!r} exists in {self.id!r}: the branch would hide it"
                )
            target = self.resolve(revision or "main")
            refs["branches"][branch] = target
            write_atomic(self.path / "refs.json", dump(refs))
            return target

    def delete_branch(self, branch: str) -> None:
        with locked(self.path / "lock"):
            refs = self.refs()
            if branch == "main":
                raise StoreError(403, f"The main branch of {self.id!r} cannot be deleted")
            if refs["branches"].pop(branch, None) is None:
                raise revision_not_found(self.id, branch)
            write_atomic(self.path / "refs.json", dump(refs))

    def update_settings(self, *, private: bool | None = None, gated: str | bool | None = None) -> None:
        """Change visibility and/or the gated setting (``False``, ``"auto"`` or ``"manual"``)."""
        if gated is not None and gated not in GATED_VALUES:
            raise StoreError(400, f"Invalid gated value {gated!r}: expected false, 'auto' or 'manual'")
        with locked(self.path / "lock"):
            meta = self.meta
            if private is not None:
                meta["private"] = bool(private)
            if gated is not None:
                meta["gated"] = gated
            write_atomic(self.path / "repo.json", dump(meta))


def _check_no_file_dir_clash(files: dict[str, FileEntry]) -> None:
    for path in files:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in files:
                raise StoreError(400, f"Path {path!r} would be inside the file {'/'.join(parts[:depth])!r}")
