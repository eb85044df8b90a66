"""``kalm hub`` commands, and the server used from separate processes the way a user would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from tests.hub.hub_helpers import make_rollouts

from kalm.data import write_rollouts
from kalm.hub.cli import main
from kalm.hub.local_server import LocalServer
from kalm.hub.server.serve import READY_PREFIX


def test_push_tags_ls_pull(hub, repo_name, tmp_path, capsys):
    dataset, spec = make_rollouts(4)
    folder = write_rollouts(dataset, tmp_path / "ds", env="fake-v0", spec=spec)
    assert main(["push", str(folder), repo_name, "--hub_endpoint", hub.url]) == 0
    assert main(["push", str(folder), repo_name, "--hub_endpoint", hub.url, "--bump", "major"]) == 0
    pushed = capsys.readouterr().out.split("\n")
    assert pushed[0].split()[:2] == [repo_name, "v1.0"] and pushed[1].split()[1] == "v2.0"
    assert main(["tags", repo_name, "--hub_endpoint", hub.url]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == ["v1.0", "v2.0"]
    assert main(["ls", "--hub_endpoint", hub.url, "--author", repo_name.split("/")[0]]) == 0
    assert f"{repo_name}\tv2.0" in capsys.readouterr().out
    assert (
        main(
            ["pull", repo_name, "--revision", "v1.0", "--hub_endpoint", hub.url, "--out", str(tmp_path / "o")]
        )
        == 0
    )
    assert "4 rollouts" in capsys.readouterr().out and (tmp_path / "o" / "meta" / "info.json").is_file()


def test_user_errors_are_one_line_and_exit_2(hub, capsys):
    assert main(["pull", "tester/nothing-here", "--hub_endpoint", hub.url]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("kalm: error: ")
        and "tester/nothing-here" in err
        and hub.url in err
        and "\n" not in err
    )


def test_mirror_copies_tags_to_another_endpoint(hub, api, server_factory, repo_name, tmp_path, capsys):
    dataset, spec = make_rollouts(3)
    folder = write_rollouts(dataset, tmp_path / "ds", env="fake-v0", spec=spec)
    for _ in range(2):
        assert main(["push", str(folder), repo_name, "--hub_endpoint", hub.url]) == 0
    other = server_factory(tmp_path / "other")
    args = ["mirror", repo_name, "--hub_endpoint", hub.url, "--to", other.url, "--to-token", "x"]
    assert main(args) == 0
    assert "mirrored 2 tag(s)" in capsys.readouterr().out
    from huggingface_hub import HfApi

    mirrored = HfApi(endpoint=other.url, token="x")
    assert [t.name for t in mirrored.list_repo_refs(repo_name, repo_type="dataset").tags] == ["v1.0", "v1.1"]
    for tag in ("v1.0", "v1.1"):
        assert set(mirrored.list_repo_files(repo_name, repo_type="dataset", revision=tag)) == set(
            api.list_repo_files(repo_name, repo_type="dataset", revision=tag)
        )
    assert main(args) == 0 and "mirrored 0 tag(s)" in capsys.readouterr().out  # re-running sends nothing


def test_serve_and_clients_in_separate_processes(tmp_path):
    """`kalm hub serve` in one process, plain huggingface_hub in another, configured only by env vars."""
    serve = subprocess.Popen(
        [sys.executable, "-m", "kalm.hub.cli", "serve", "--root", str(tmp_path / "store"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    server = LocalServer(serve, "", tmp_path / "store", None)
    try:
        line = serve.stdout.readline()
        assert line.startswith(READY_PREFIX)
        url = line[len(READY_PREFIX) :].split()[0]
        client = textwrap.dedent("""
            from huggingface_hub import HfApi, hf_hub_download
            api = HfApi()
            api.create_repo("user/demo", repo_type="dataset")
            api.upload_file(
                path_or_fileobj=b"\\0" * (3 << 20), path_in_repo="data/x.bin", repo_id="user/demo",
                repo_type="dataset",
            )
            api.create_tag("user/demo", tag="v1.0", repo_type="dataset")
            path = hf_hub_download("user/demo", "data/x.bin", repo_type="dataset", revision="v1.0")
            print(open(path, "rb").read() == b"\\0" * (3 << 20))
        """)
        env = dict(
            os.environ,
            HF_ENDPOINT=url,
            HF_HUB_DISABLE_XET="1",
            HF_TOKEN="anything",
            HF_HOME=str(tmp_path / "hf"),
            HF_HUB_OFFLINE="0",
        )
        result = subprocess.run(
            [sys.executable, "-c", client], env=env, capture_output=True, text=True, timeout=120
        )
        assert result.stdout.strip() == "True", result.stderr[-2000:]
    finally:
        server.stop()
    assert serve.returncode == 0  # SIGTERM: a clean exit


def test_local_server_exits_when_its_parent_dies(tmp_path):
    """The child of ensure_endpoint/start_local_server never outlives the process that started it."""
    code = textwrap.dedent(f"""
        import os, signal
        from kalm.hub.local_server import start_local_server
        server = start_local_server({str(tmp_path / "store")!r})
        print(server.process.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    parent = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    child = int(parent.stdout.split()[0])
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        import time

        time.sleep(0.05)
    pytest.fail(f"server {child} outlived its parent")


def test_the_old_endpoint_flag_fails_naming_the_new_one(capsys):
    with pytest.raises(SystemExit):
        main(["ls", "--endpoint", "http://127.0.0.1:1"])
    assert "--endpoint was renamed: use --hub_endpoint" in capsys.readouterr().err
