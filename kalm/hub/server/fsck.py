"""``kalm hub fsck [--repair]``: verify a store's refs, commit objects and blobs; set aside what is damaged.

What is checked, per repo: ``repo.json`` and ``refs.json`` parse and have their shape; every commit object
parses and its name is the sha1 of its content (:func:`kalm.hub.server.objects.commit_id`); every ref points
to an intact commit; the history reachable from the refs has all its parents; every file of every reachable
commit has an intact blob. Store-wide: every blob's sha256 is its name (each blob is read once).

With ``repair``, what cannot be trusted is moved under ``<root>/quarantine/<time>/`` (same relative path),
never deleted: damaged blobs, damaged commit objects, unreadable ``repo.json``/``refs.json``. Then
``refs.json`` is rebuilt when it was lost (``main`` at the newest intact head, other heads as
``recovered-<sha>`` branches; tags cannot be recovered), refs to missing commits are dropped (recorded
in the quarantine), and ``repo.json`` is rebuilt as a private repo. Garbage older than ``min_age``
seconds is deleted: orphan blobs (referenced by no commit object, quarantined ones included) and
leftovers of interrupted uploads in ``tmp/`` and of interrupted writes (``.<name>.*`` files). Orphans are
removed while every repo's lock is held, so a commit running at the same time either is seen or is
refused; intact objects that anything references are never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kalm.hub.server.blobs import CHUNK, SHA256_RE
from kalm.hub.server.objects import Commit, commit_id, dump, locked, now_iso, write_atomic
from kalm.hub.server.repo import Repo, read_refs
from kalm.hub.server.store import Store
from kalm.hub.server.validate import RepoDamagedError

DEFAULT_MIN_AGE_S = 3600.0


@dataclass
class Finding:
    """One thing found: ``damaged`` (cannot be trusted) or ``garbage`` (safe to delete); ``action`` if
    repaired."""

    scope: str
    kind: str
    problem: str
    action: str | None = None

    def __str__(self) -> str:
        return f"{self.scope}: {self.kind.upper()} {self.problem}" + (
            f" -> {self.action}" if self.action else ""
        )


@dataclass
class Report:
    repos: list[str] = field(default_factory=list)
    blobs_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def damaged(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.kind == "damaged"]


class Checker:
    """One fsck run over one store root."""

    def __init__(self, root: Path, *, repair: bool, min_age: float) -> None:
        self.store = Store(root)
        self.root, self.repair, self.min_age = self.store.root, repair, min_age
        self.quarantine_dir = (
            self.root
            / "quarantine"
            / f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{uuid.uuid4().hex[:6]}"
        )
        self.report = Report()
        self.intact_blobs: dict[str, int] = {}

    def run(self) -> Report:
        self.check_blobs()
        repos = [repo for kind in ("model", "dataset") for repo in self.store.list_repos(kind)]
        for repo in repos:
            self.report.repos.append(f"{repo.type} {repo.id}")
            with self._lock(repo):
                RepoChecker(self, repo).run()
        with contextlib.ExitStack() as stack:
            for repo in (repo for repo in repos if repo.path.is_dir()):  # quarantined repos are gone
                stack.enter_context(self._lock(repo))
            self.remove_orphans()
        self.remove_leftovers()
        return self.report

    def note(self, scope: str, kind: str, problem: str, action: str | None = None) -> None:
        self.report.findings.append(Finding(scope, kind, problem, action if self.repair else None))

    def quarantine(self, path: Path) -> str:
        target = self.quarantine_dir / path.relative_to(self.root)
        _move_into(path, target)
        return f"quarantined to {target.relative_to(self.root)}"

    def _lock(self, repo: Repo) -> contextlib.AbstractContextManager[None]:
        return locked(repo.path / "lock") if self.repair else contextlib.nullcontext()

    def check_blobs(self) -> None:
        """Hash every blob once; a blob whose content is not its name is damaged."""
        for path in sorted(self.store.blobs.blob_dir.glob("*/*")):
            self.report.blobs_checked += 1
            actual = _sha256_of(path)
            if SHA256_RE.match(path.name) and actual == path.name and path.parent.name == path.name[:2]:
                self.intact_blobs[path.name] = path.stat().st_size
                continue
            problem = f"blob {path.name[:16]} has sha256 {actual[:16] if actual else '(unreadable)'}"
            self.note("store", "damaged", problem, self.quarantine(path) if self.repair else None)

    def remove_orphans(self) -> None:
        """Delete old intact blobs that no commit object (quarantined ones included) references."""
        referenced: set[str] = set()
        for objects in [*self.root.glob("repos/*/*/*/objects"), *self.root.glob("quarantine/**/objects")]:
            for path in objects.glob("*.json"):
                referenced |= _blob_references(path)
        for sha, size in sorted(self.intact_blobs.items()):
            path = self.store.blobs.path(sha)
            if sha in referenced or not path.exists() or not self._old(path):
                continue
            self.note("store", "garbage", f"orphan blob {sha[:16]} ({size} bytes)", "removed")
            if self.repair:
                path.unlink()

    def remove_leftovers(self) -> None:
        """Delete old leftovers of interrupted uploads (``tmp/``) and interrupted writes (``.<name>.*``)."""
        leftovers = [
            *self.store.blobs.tmp_dir.iterdir(),
            *self.root.glob("repos/*/*/*/.*"),
            *self.root.glob("repos/*/*/*/objects/.*"),
        ]
        for path in sorted(leftovers):
            if not self._old(path):
                continue
            size = (
                sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
                if path.is_dir()
                else path.stat().st_size
            )
            self.note("store", "garbage", f"leftover {path.relative_to(self.root)} ({size} bytes)", "removed")
            if self.repair:
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    def _old(self, path: Path) -> bool:
        try:
            return time.time() - path.lstat().st_mtime >= self.min_age
        except FileNotFoundError:
            return False


class RepoChecker:
    """The checks and repairs of one repo (run under its lock when repairing)."""

    def __init__(self, checker: Checker, repo: Repo) -> None:
        self.checker, self.repo = checker, repo
        self.scope = f"{repo.type} {repo.id}"
        self.intact: dict[str, Commit] = {}

    def note(self, problem: str, action: str | None = None) -> None:
        self.checker.note(self.scope, "damaged", problem, action)

    def run(self) -> None:
        self.check_objects()
        refs = self.check_refs()
        if not self.repo.path.is_dir():
            return  # nothing intact was left: the whole repo went to the quarantine
        self.check_meta()
        if refs is not None:
            self.check_reachable(refs)

    def check_objects(self) -> None:
        for path in sorted((self.repo.path / "objects").glob("*.json")):
            problem = _commit_problem(path)
            if problem is None:
                self.intact[path.stem] = Commit.from_dict(json.loads(path.read_bytes()))
                continue
            self.note(
                f"commit object {path.stem[:12]}: {problem}",
                self.checker.quarantine(path) if self.checker.repair else None,
            )

    def check_refs(self) -> dict[str, Any] | None:
        path = self.repo.path / "refs.json"
        try:
            refs = read_refs(path, self.repo.id)
        except RepoDamagedError as error:
            return self._rebuild_refs(error.what)
        dropped = {}
        for section, name, target in _ref_targets(refs):
            if target not in self.intact:
                dropped[f"{section}/{name}"] = target
                self.note(
                    f"ref {section}/{name} points to a missing or damaged commit {target[:12]}",
                    "ref dropped (recorded in the quarantine's dropped-refs.json)",
                )
        if dropped and self.checker.repair:
            self._save_dropped(dropped)
            for key in dropped:
                section, name = key.split("/", 1)
                refs[section].pop(name)
            if "main" not in refs["branches"]:
                heads = self._heads()
                if not heads:
                    self.note("no intact commit is left", self.checker.quarantine(self.repo.path))
                    return None
                refs["branches"]["main"] = heads[0]
                self.note(f"main had to move to the newest intact head {heads[0][:12]}", "main moved")
            write_atomic(path, dump(refs))
        return refs

    def _rebuild_refs(self, problem: str) -> dict[str, Any] | None:
        """Replace a lost ``refs.json``: ``main`` at the newest intact head, other heads as recovered
        branches."""
        if not self.checker.repair:
            self.note(problem)
            return None
        path = self.repo.path / "refs.json"
        actions = [self.checker.quarantine(path)] if path.exists() else []
        heads = self._heads()
        if not heads:
            self.note(f"{problem}; no intact commit is left", self.checker.quarantine(self.repo.path))
            return None
        branches = {"main": heads[0], **{f"recovered-{head[:8]}": head for head in heads[1:]}}
        refs = {"branches": branches, "tags": {}, "pulls": {}}
        write_atomic(path, dump(refs))
        actions.append(
            f"refs.json rebuilt: main -> {heads[0][:12]}, {len(heads) - 1} recovered branch(es), tags lost"
        )
        self.note(problem, "; ".join(actions))
        return refs

    def _heads(self) -> list[str]:
        """Intact commits that no intact commit has as parent, newest first."""
        parents = {parent for commit in self.intact.values() for parent in commit.parents}
        heads = [commit for cid, commit in self.intact.items() if cid not in parents]
        return [commit.id for commit in sorted(heads, key=lambda c: (c.date, c.id), reverse=True)]

    def _save_dropped(self, dropped: dict[str, str]) -> None:
        target = self.checker.quarantine_dir / (self.repo.path / "dropped-refs.json").relative_to(
            self.checker.root
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(dump(dropped))

    def check_meta(self) -> None:
        try:
            self.repo.meta
            return
        except RepoDamagedError as error:
            problem = error.what
        if not self.checker.repair:
            self.note(problem)
            return
        path = self.repo.path / "repo.json"
        action = self.checker.quarantine(path) + "; " if path.exists() else ""
        dates = sorted(commit.date for commit in self.intact.values())
        meta = {
            "id": self.repo.id,
            "type": self.repo.type,
            "private": True,
            "created_at": dates[0] if dates else now_iso(),
        }
        write_atomic(path, dump(meta))
        self.note(problem, action + "repo.json rebuilt as a private repo")

    def check_reachable(self, refs: dict[str, Any]) -> None:
        seen: set[str] = set()
        pending = [target for _, _, target in _ref_targets(refs) if target in self.intact]
        while pending:
            cid = pending.pop()
            if cid in seen:
                continue
            seen.add(cid)
            commit = self.intact[cid]
            for parent in commit.parents:
                if parent in self.intact:
                    pending.append(parent)
                else:
                    self.note(f"history broken: commit {cid[:12]} has a missing parent {parent[:12]}")
            for path, entry in commit.files.items():
                if self.checker.intact_blobs.get(entry.sha256) != entry.size:
                    self.note(
                        f"{path!r} at commit {cid[:12]}: content {entry.sha256[:12]} missing or damaged "
                        "(uploading the same bytes again restores it)"
                    )


def _move_into(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, merging folders that are already partly there."""
    if source.is_dir() and target.is_dir():
        for child in source.iterdir():
            _move_into(child, target / child.name)
        source.rmdir()
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), target)


def _ref_targets(refs: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    yield from (("branches", name, target) for name, target in refs["branches"].items())
    yield from (("tags", name, tag["target"]) for name, tag in refs["tags"].items())
    yield from (("pulls", number, pull["target"]) for number, pull in refs.get("pulls", {}).items())


def _commit_problem(path: Path) -> str | None:
    """Why the commit object at ``path`` cannot be trusted (``None`` when it is intact)."""
    try:
        body = json.loads(path.read_bytes())
        Commit.from_dict(body)
    except (OSError, ValueError, RecursionError) as error:
        return f"unreadable ({type(error).__name__})"
    if body["id"] != path.stem or commit_id(body) != path.stem:
        return "content does not match its id"
    return None


def _blob_references(path: Path) -> set[str]:
    """The blob digests a commit object names, even a damaged one (its blobs may help a manual recovery)."""
    try:
        files = json.loads(path.read_bytes()).get("files", {})
        return {str(entry.get("sha256")) for entry in files.values() if isinstance(entry, dict)}
    except (OSError, ValueError, AttributeError, RecursionError):
        return set()


def _sha256_of(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def fsck(root: str | Path, *, repair: bool = False, min_age: float = DEFAULT_MIN_AGE_S) -> Report:
    """Check (and with ``repair``, fix) the store at ``root``; see the module docstring."""
    if not (Path(root).expanduser() / "FORMAT").is_file():
        raise FileNotFoundError(f"no kalm hub store at {root} (no FORMAT file)")
    return Checker(Path(root).expanduser(), repair=repair, min_age=min_age).run()


__all__ = ["DEFAULT_MIN_AGE_S", "Finding", "Report", "fsck"]
