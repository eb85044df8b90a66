"""`kalm hub fsck [--repair]`: finds the damage per repo, sets aside what cannot be trusted, removes garbage,
and never touches a reachable intact object."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import LocalEntryNotFoundError

from kalm.hub.cli import main
from tests.hub.hub_helpers import raw_request


def _blob(root: Path, data: bytes) -> Path:
    sha = hashlib.sha256(data).hexdigest()
    return root / "blobs" / "sha256" / sha[:2] / sha


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every blob and commit object of the store, by path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for pattern in ("blobs/sha256/*/*", "repos/*/*/*/objects/*.json")
        for p in root.glob(pattern)
    }


@pytest.fixture
def store(server_factory, tmp_path):
    """A stopped server's store with four repos, three of them damaged, plus an orphan blob and tmp
    leftovers."""
    root = tmp_path / "store"
    server = server_factory(root)
    api = HfApi(endpoint=server.url, token="x")
    for name in ("good", "lost-refs", "lost-meta", "bad-blob"):
        api.create_repo(f"tester/{name}", repo_type="dataset")
        api.upload_file(
            path_or_fileobj=f"{name} v1".encode(),
            path_in_repo="f.txt",
            repo_id=f"tester/{name}",
            repo_type="dataset",
        )
        api.create_tag(f"tester/{name}", tag="v1.0", repo_type="dataset")
        api.upload_file(
            path_or_fileobj=f"{name} v2".encode(),
            path_in_repo="g.txt",
            repo_id=f"tester/{name}",
            repo_type="dataset",
        )
    orphan = os.urandom(1000)
    status, _, body = raw_request(
        "POST",
        f"{server.url}/datasets/tester/good.git/info/lfs/objects/batch",
        body=json.dumps(
            {
                "operation": "upload",
                "objects": [{"oid": hashlib.sha256(orphan).hexdigest(), "size": len(orphan)}],
            }
        ).encode(),
    )
    href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
    assert raw_request("PUT", href, body=orphan)[0] == 200  # uploaded, never committed
    server.stop()
    repos = root / "repos" / "datasets" / "tester"
    (repos / "lost-refs" / "refs.json").write_text('{"branches": {"main": "12')
    (repos / "lost-meta" / "repo.json").unlink()
    _blob(root, b"bad-blob v2").chmod(0o644)
    _blob(root, b"bad-blob v2").write_bytes(b"bad-blob v3")  # silent bit rot: the sha256 no longer matches
    (root / "tmp" / "blob-killed").write_bytes(os.urandom(1 << 20))  # what a kill -9 mid-upload leaves
    (root / "tmp" / "blob-in-flight").write_bytes(b"young")
    old = time.time() - 7200
    for path in (root / "tmp" / "blob-killed", _blob(root, orphan)):
        os.utime(path, (old, old))
    return root, orphan


def test_fsck_reports_damage_per_repo_without_changing_anything(store, capsys):
    root, _ = store
    before = _snapshot(root)
    assert main(["fsck", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "dataset tester/good: ok" in out
    assert "dataset tester/lost-refs: DAMAGED refs.json is unreadable" in out
    assert "dataset tester/lost-meta: DAMAGED repo.json is missing" in out
    assert "store: DAMAGED blob" in out and "dataset tester/bad-blob: DAMAGED 'g.txt'" in out
    assert "GARBAGE orphan blob" in out and "GARBAGE leftover tmp/blob-killed (1048576 bytes)" in out
    assert "blob-in-flight" not in out  # younger than --min-age
    assert "run with --repair" in out and _snapshot(root) == before


def test_fsck_repair_sets_damage_aside_and_keeps_every_intact_object(store, server_factory, tmp_path, capsys):
    root, orphan = store
    before = _snapshot(root)
    assert main(["fsck", "--root", str(root), "--repair"]) == 1
    out = capsys.readouterr().out
    assert "refs.json rebuilt: main ->" in out and "repo.json rebuilt as a private repo" in out
    assert "-> quarantined to quarantine/" in out and "-> removed" in out
    after = _snapshot(root)
    bad = str(_blob(root, b"bad-blob v2").relative_to(root))
    orphaned = str(_blob(root, orphan).relative_to(root))
    assert set(before) - set(after) == {bad, orphaned}  # the damaged blob is set aside, the orphan removed
    assert all(after[path] == data for path, data in before.items() if path in after)
    assert list((root / "quarantine").glob(f"*/{bad}"))
    assert not (root / "tmp" / "blob-killed").exists() and (root / "tmp" / "blob-in-flight").exists()
    assert main(["fsck", "--root", str(root), "--repair"]) == 1  # what is lost stays reported, nothing else
    again = capsys.readouterr().out
    assert (
        again.count("DAMAGED") == 1 and "'g.txt'" in again and "-> " not in again and "GARBAGE" not in again
    )

    server = server_factory(root)
    api = HfApi(endpoint=server.url, token="x")
    assert [d.id for d in api.list_datasets()] == [
        f"tester/{n}" for n in ("bad-blob", "good", "lost-meta", "lost-refs")
    ]
    lost = api.list_repo_refs("tester/lost-refs", repo_type="dataset")
    assert lost.tags == [] and set(api.list_repo_files("tester/lost-refs", repo_type="dataset")) == {
        ".gitattributes",
        "f.txt",
        "g.txt",
    }  # main is back at the newest head
    assert api.dataset_info("tester/lost-meta").private
    cache = tmp_path / "cache"
    assert (
        Path(
            hf_hub_download(
                "tester/bad-blob", "f.txt", repo_type="dataset", endpoint=server.url, cache_dir=cache
            )
        ).read_bytes()
        == b"bad-blob v1"
    )
    with pytest.raises(LocalEntryNotFoundError) as missing:  # never the rotten bytes
        hf_hub_download("tester/bad-blob", "g.txt", repo_type="dataset", endpoint=server.url, cache_dir=cache)
    assert missing.value.__cause__.response.status_code == 409
    api.upload_file(
        path_or_fileobj=b"bad-blob v2",
        path_in_repo="again.txt",
        repo_id="tester/bad-blob",
        repo_type="dataset",
    )  # the same bytes, uploaded again, restore the lost content
    server.stop()
    assert main(["fsck", "--root", str(root)]) == 0 and "clean" in capsys.readouterr().out


def test_fsck_drops_refs_to_missing_commits_and_min_age_protects_young_garbage(store, capsys):
    root, orphan = store
    repo = root / "repos" / "datasets" / "tester" / "good"
    tag_target = json.loads((repo / "refs.json").read_text())["tags"]["v1.0"]["target"]
    (repo / "objects" / f"{tag_target}.json").unlink()
    assert main(["fsck", "--root", str(root), "--repair", "--min-age", "1e9"]) == 1
    out = capsys.readouterr().out
    assert "ref tags/v1.0 points to a missing or damaged commit" in out and "history broken" in out
    assert "removed" not in out and _blob(root, orphan).exists()  # nothing is old enough to be removed
    assert "v1.0" not in json.loads((repo / "refs.json").read_text())["tags"]
    assert list((root / "quarantine").glob("*/repos/datasets/tester/good/dropped-refs.json"))


def test_fsck_refuses_a_folder_that_is_not_a_store(tmp_path, capsys):
    assert main(["fsck", "--root", str(tmp_path / "nothing")]) == 2
    assert "no kalm hub store" in capsys.readouterr().err


def test_a_repo_with_no_intact_commit_goes_to_the_quarantine_whole(tmp_path):
    from kalm.hub.server.fsck import fsck
    from kalm.hub.server.store import Store

    store = Store(tmp_path / "store")
    for name in ("kept", "lost"):
        store.create_repo("model", f"tester/{name}")
    for path in (store.root / "repos" / "models" / "tester" / "lost" / "objects").glob("*.json"):
        path.write_text("{}")
    report = fsck(store.root, repair=True, min_age=0)
    assert [str(f) for f in report.damaged if "no intact commit" in f.problem]
    assert [repo.id for repo in store.list_repos("model")] == ["tester/kept"]
    assert list((store.root / "quarantine").glob("*/repos/models/tester/lost/refs.json"))
    assert not fsck(store.root).damaged
