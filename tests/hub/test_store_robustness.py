"""The server as a real store: persistence, concurrent writers, killed uploads, hostile input, tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from tests.hub.hub_helpers import make_rollouts, raw_request
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import HfHubHTTPError

from kalm.hub.datasets import publish_dataset, pull_dataset


def _api(server) -> HfApi:
    return HfApi(endpoint=server.url, token=server.token or "kalm-local")


def test_state_persists_across_restarts(server_factory, tmp_path):
    first = server_factory(tmp_path / "store")
    api = _api(first)
    api.create_repo("tester/persist", repo_type="dataset")
    commit = api.upload_file(
        path_or_fileobj=os.urandom(11 << 20),
        path_in_repo="big.bin",
        repo_id="tester/persist",
        repo_type="dataset",
    )
    api.create_tag("tester/persist", tag="v1.0", repo_type="dataset")
    first.stop()
    second = server_factory(tmp_path / "store")
    api = _api(second)
    refs = api.list_repo_refs("tester/persist", repo_type="dataset")
    assert refs.tags[0].target_commit == commit.oid
    assert (
        api.dataset_info("tester/persist", revision="v1.0", files_metadata=True).siblings[1].size == 11 << 20
    )


def test_concurrent_committers_lose_nothing(api, repo_name):
    api.create_repo(repo_name)
    writers, commits_each = 8, 4

    def write(writer: int) -> list[str]:
        return [
            api.create_commit(
                repo_name,
                [CommitOperationAdd(f"w{writer}/c{i}.txt", f"{writer}:{i}".encode())],
                commit_message=f"writer {writer} commit {i}",
            ).oid
            for i in range(commits_each)
        ]

    with ThreadPoolExecutor(writers) as pool:
        made = [oid for oids in pool.map(write, range(writers)) for oid in oids]
    history = [c.commit_id for c in api.list_repo_commits(repo_name)]
    assert set(made) <= set(history) and len(history) == writers * commits_each + 1
    files = set(api.list_repo_files(repo_name))
    assert {f"w{w}/c{i}.txt" for w in range(writers) for i in range(commits_each)} <= files


def test_concurrent_publishers_each_get_their_own_version(hub, api, repo_name):
    dataset, spec = make_rollouts(3)
    with ThreadPoolExecutor(8) as pool:
        published = list(
            pool.map(
                lambda seed: publish_dataset(
                    make_rollouts(2 + seed % 3, seed=seed)[0], repo_name, env="fake-v0", spec=spec
                ),
                range(8),
            )
        )
    assert sorted(p.version for p in published) == [f"v1.{i}" for i in range(8)]
    for p in published:
        pulled = pull_dataset(repo_name, p.version)
        assert pulled.commit == p.commit and len(pulled.dataset) == 2 + pulled.dataset[0]["seed"] % 3


def _lfs_href(server, repo_id: str, data: bytes) -> str:
    oid = hashlib.sha256(data).hexdigest()
    status, _, body = raw_request(
        "POST",
        f"{server.url}/{repo_id}.git/info/lfs/objects/batch",
        headers={"Authorization": f"Bearer {server.token or 'x'}"},
        body=json.dumps({"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}).encode(),
    )
    assert status == 200
    return json.loads(body)["objects"][0]["actions"]["upload"]["href"]


def test_upload_cut_mid_way_leaves_no_blob_and_repo_intact(hub_server, api, repo_name):
    api.create_repo(repo_name)
    before = api.upload_file(path_or_fileobj=b"kept", path_in_repo="kept.txt", repo_id=repo_name).oid
    data = os.urandom(4 << 20)
    href = urlsplit(_lfs_href(hub_server, repo_name, data))
    with socket.create_connection((href.hostname, href.port)) as sock:  # announce 4 MiB, send 1 MiB, vanish
        sock.sendall(
            (
                f"PUT {href.path}?{href.query} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode()
            + data[: 1 << 20]
        )
    status, error = _commit_lfs_pointer(hub_server, repo_name, data)  # a commit cannot use the missing blob
    assert status == 400 and "never uploaded" in error
    assert api.repo_info(repo_name).sha == before
    bad = raw_request("PUT", f"{hub_server.url}{href.path}?{href.query}", body=os.urandom(len(data)))
    assert bad[0] == 400 and b"sha256" in bad[2]  # wrong bytes are refused, not stored
    api.upload_file(path_or_fileobj=data, path_in_repo="later.bin", repo_id=repo_name)  # and a retry works
    assert open(hf_hub_download(repo_name, "later.bin"), "rb").read() == data


def _commit_lfs_pointer(server, repo_id: str, data: bytes) -> tuple[int, str]:
    lines = [
        {"key": "header", "value": {"summary": "dangling"}},
        {
            "key": "lfsFile",
            "value": {
                "path": "lost.bin",
                "algo": "sha256",
                "oid": hashlib.sha256(data).hexdigest(),
                "size": len(data),
            },
        },
    ]
    status, _, body = raw_request(
        "POST",
        f"{server.url}/api/models/{repo_id}/commit/main",
        body="\n".join(json.dumps(line) for line in lines).encode(),
        headers={"Content-Type": "application/x-ndjson", "Authorization": "Bearer x"},
    )
    return status, json.loads(body)["error"]


def test_server_killed_mid_upload_keeps_previous_revision(server_factory, tmp_path):
    server = server_factory(tmp_path / "store")
    api = _api(server)
    api.create_repo("tester/crash")
    kept = api.upload_file(path_or_fileobj=b"v1", path_in_repo="f.txt", repo_id="tester/crash").oid
    data = os.urandom(8 << 20)
    href = urlsplit(_lfs_href(server, "tester/crash", data))
    sock = socket.create_connection((href.hostname, href.port))
    sock.sendall(
        f"PUT {href.path}?{href.query} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode()
        + data[: 3 << 20]
    )
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    sock.close()
    restarted = server_factory(tmp_path / "store")
    api = _api(restarted)
    assert api.repo_info("tester/crash").sha == kept
    assert (
        open(hf_hub_download("tester/crash", "f.txt", revision=kept, endpoint=restarted.url), "rb").read()
        == b"v1"
    )
    blob_dir = tmp_path / "store" / "blobs" / "sha256"
    assert not any(path.name == hashlib.sha256(data).hexdigest() for path in blob_dir.rglob("*"))


@pytest.mark.parametrize(
    "path", ["../escape.txt", "a/../../escape.txt", "/etc/passwd", "a//b", ".git/config"]
)
def test_path_traversal_is_refused(hub, api, repo_name, path):
    api.create_repo(repo_name)
    line = {
        "key": "file",
        "value": {"path": path, "content": base64.b64encode(b"x").decode(), "encoding": "base64"},
    }
    status, headers, _ = raw_request(
        "POST",
        f"{hub.url}/api/models/{repo_name}/commit/main",
        body=(json.dumps({"key": "header", "value": {"summary": "evil"}}) + "\n" + json.dumps(line)).encode(),
        headers={"Authorization": f"Bearer {hub.token}"},
    )
    assert status == 400
    assert api.list_repo_files(repo_name) == [".gitattributes"]


@pytest.mark.parametrize("name", ["../evil", "a--b", "-lead", "x" * 97, "dot..dot", "sp ace"])
def test_invalid_repo_ids_are_refused(hub, name):
    body = json.dumps({"name": name, "organization": "tester", "type": "model"}).encode()
    status, _, _ = raw_request(
        "POST",
        f"{hub.url}/api/repos/create",
        body=body,
        headers={"Authorization": f"Bearer {hub.token}", "Content-Type": "application/json"},
    )
    assert status == 400


def test_traversal_in_urls_finds_nothing(hub, api, repo_name):
    api.create_repo(repo_name)
    for url in (
        f"/{repo_name}/resolve/main/..%2F..%2Frepo.json",
        "/api/models/..%2F../tree/main",
        f"/{repo_name}/resolve/main/%2Fetc%2Fpasswd",
    ):
        status, _, _ = raw_request("GET", hub.url + url)
        assert status in (400, 404), url


def test_oversized_body_gets_413(hub):
    import http.client

    split = urlsplit(hub.url)
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
    connection.putrequest("POST", "/api/models/tester/x/commit/main")
    connection.putheader("Content-Length", str(4 << 30))
    connection.putheader("Authorization", f"Bearer {hub.token}")
    connection.endheaders()  # the 4 GiB body is announced, never sent
    response = connection.getresponse()
    connection.close()
    assert response.status == 413


def test_writes_need_the_token_when_one_is_set(server_factory):
    server = server_factory(token="s3cret")
    with pytest.raises(HfHubHTTPError) as refused:
        HfApi(endpoint=server.url, token="wrong").create_repo("tester/guarded")
    assert refused.value.response.status_code == 401
    owner = HfApi(endpoint=server.url, token="s3cret")
    owner.create_repo("tester/guarded")
    owner.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="tester/guarded")
    reader = HfApi(endpoint=server.url, token="wrong")
    assert "x.txt" in reader.list_repo_files("tester/guarded")  # public reads stay open
    with pytest.raises(HfHubHTTPError):
        reader.create_tag("tester/guarded", tag="v1.0")
    assert owner.list_repo_refs("tester/guarded").tags == []


def test_concurrent_stores_share_a_root(server_factory, tmp_path):
    one, two = server_factory(tmp_path / "shared"), server_factory(tmp_path / "shared")
    _api(one).create_repo("tester/shared")

    def write(index: int) -> None:
        server = (one, two)[index % 2]
        _api(server).create_commit(
            "tester/shared", [CommitOperationAdd(f"f{index}.txt", b"x")], commit_message=str(index)
        )

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {f"f{i}.txt" for i in range(8)} <= set(_api(two).list_repo_files("tester/shared"))
