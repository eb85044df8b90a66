"""Uploads through Xet, as huggingface_hub 2.4.0 does whenever HF_HUB_DISABLE_XET is unset."""

from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download

from kalm.hub.server.xet import (
    BOOKEND,
    SHARD_TAG_PREFIX,
    XetFormatError,
    bg4_regroup,
    chunk_bytes,
    lz4_frame_decompress,
    shard_files,
    xorb_chunks,
)
from tests.hub.hub_helpers import raw_request


def _xet_env(hub, tmp_path: Path) -> dict[str, str]:
    """The environment of a user who only set the endpoint and a token (Xet left on)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "KALM_HUB"))}
    return {
        **env,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": hub.token,
        "HF_HOME": str(tmp_path / "client-home"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }


def _files(tmp_path: Path) -> dict[str, bytes]:
    rng = random.Random(0)
    text = b"\0" + b"".join(b"step %d reward %d\n" % (i, i * 7 % 100) for i in range(150_000))  # LZ4 chunks
    floats = b"".join(struct.pack("<f", rng.uniform(-1, 1)) for _ in range(300_000))  # byte-grouped chunks
    files = {"random.bin": os.urandom(1_500_000), "text.bin": text, "floats.bin": floats}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return files


def test_hf_upload_and_python_clients_work_with_xet_on(hub, api, repo_name, tmp_path):
    files = _files(tmp_path)
    api.create_repo(repo_name)
    env = _xet_env(hub, tmp_path)
    hf = str(Path(sys.executable).with_name("hf"))
    for name in files:
        result = subprocess.run(
            [hf, "upload", repo_name, str(tmp_path / name), name],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    main = api.repo_info(repo_name).sha
    result = subprocess.run(
        [hf, "upload", repo_name, str(tmp_path / "random.bin"), "proposal.bin", "--create-pr"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert api.repo_info(repo_name).sha == main and "proposal.bin" in api.list_repo_files(
        repo_name, revision="refs/pr/1"
    )
    (tmp_path / "folder" / "sub").mkdir(parents=True)
    (tmp_path / "folder" / "sub" / "edited.bin").write_bytes(
        files["text.bin"][:900_000] + b"edit" + files["text.bin"][900_000:]
    )  # mostly deduplicated
    code = f"""
        import datasets
        from huggingface_hub import HfApi, constants
        assert not constants.HF_HUB_DISABLE_XET
        api = HfApi()
        api.upload_folder(folder_path={str(tmp_path / "folder")!r}, repo_id={repo_name!r})
        api.create_repo({repo_name!r}, repo_type="dataset")
        rows = datasets.Dataset.from_dict({{"x": list(range(500)), "y": [i / 3 for i in range(500)]}})
        rows.push_to_hub({repo_name!r})
        pushed = rows.select(range(7)).push_to_hub({repo_name!r}, create_pr=True)
        print(pushed.pr_revision)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "refs/pr/1"
    for name, data in files.items():
        assert Path(hf_hub_download(repo_name, name)).read_bytes() == data
    edited = Path(hf_hub_download(repo_name, "sub/edited.bin")).read_bytes()
    assert (
        hashlib.sha256(edited).digest()
        == hashlib.sha256((tmp_path / "folder/sub/edited.bin").read_bytes()).digest()
    )
    import datasets

    assert len(datasets.load_dataset(repo_name, split="train")) == 500
    assert len(datasets.load_dataset(repo_name, split="train", revision="refs/pr/1")) == 7


def _cas_token(hub, repo_id: str) -> str:
    status, _, body = raw_request(
        "GET",
        f"{hub.url}/api/models/{repo_id}/xet-write-token/main",
        headers={"Authorization": f"Bearer {hub.token}"},
    )
    assert status == 200
    return json.loads(body)["accessToken"]


def test_cas_answers_bad_uploads_with_clear_errors(hub, api, repo_name):
    api.create_repo(repo_name)
    token = {"Authorization": f"Bearer {_cas_token(hub, repo_name)}"}
    xorb = "ab" * 32
    assert (
        raw_request(
            "POST",
            f"{hub.url}/xet/v1/xorbs/default/{xorb}",
            body=b"junk",
            headers={"Authorization": "Bearer 1.forged"},
        )[0]
        == 401
    )
    status, _, body = raw_request(
        "POST", f"{hub.url}/xet/v1/xorbs/default/{xorb}", body=b"junk", headers=token
    )
    assert status == 400 and b"rejected" in body
    shard = _shard([(xorb, 0, 1, 10)], sha256=b"\x11" * 32)
    status, _, body = raw_request("POST", f"{hub.url}/xet/v2/shards", body=shard, headers=token)
    frame = json.loads(body.splitlines()[-1])
    assert status == 200 and frame["type"] == "error" and "is not on this server" in frame["message"]
    assert raw_request("GET", f"{hub.url}/xet/v1/chunks/default-merkledb/{xorb}", headers=token)[0] == 404
    assert raw_request("GET", f"{hub.url}/api/models/{repo_name}/xet-read-token/main")[0] == 404


def _shard(segments: list[tuple[str, int, int, int]], sha256: bytes | None) -> bytes:
    def raw_hash(text: str) -> bytes:
        raw = bytes.fromhex(text)
        return b"".join(raw[i : i + 8][::-1] for i in range(0, 32, 8))

    flags = 1 << 30 if sha256 else 0
    body = SHARD_TAG_PREFIX.ljust(32, b"\0") + struct.pack("<QQ", 2, 0)
    body += b"\x22" * 32 + struct.pack("<II", flags, len(segments)) + bytes(8)
    for xorb, start, end, size in segments:
        body += raw_hash(xorb) + struct.pack("<IIII", 0, size, start, end)
    if sha256:
        body += sha256 + bytes(16)
    return body + BOOKEND + bytes(16)


def _lz4_frame(*blocks: bytes) -> bytes:
    frame = struct.pack("<I", 0x184D2204) + bytes([0x40, 0x40, 0x00])  # version 1, no checksums, HC ignored
    return frame + b"".join(struct.pack("<I", len(b)) + b for b in blocks) + bytes(4)


def test_lz4_frames_decode_literals_overlapping_matches_and_raw_blocks():
    block = (
        bytes([0x46]) + b"abcd" + struct.pack("<H", 4) + bytes([0x10]) + b"Z"
    )  # "abcd", copy 10 of offset 4
    assert lz4_frame_decompress(_lz4_frame(block), 100) == b"abcd" + b"abcdabcdab" + b"Z"
    overlapping = bytes([0x1F]) + b"x" + struct.pack("<H", 1) + bytes([20]) + bytes([0x10]) + b"y"
    assert lz4_frame_decompress(_lz4_frame(overlapping), 100) == b"x" * 40 + b"y"
    raw = (
        struct.pack("<I", 0x184D2204)
        + bytes([0x40, 0x40, 0])
        + struct.pack("<I", 0x80000003)
        + b"raw"
        + bytes(4)
    )
    assert lz4_frame_decompress(raw, 100) == b"raw"
    with pytest.raises(XetFormatError, match="more than"):
        lz4_frame_decompress(_lz4_frame(overlapping), 10)
    with pytest.raises(XetFormatError, match="out of range"):
        lz4_frame_decompress(_lz4_frame(bytes([0x04]) + struct.pack("<H", 9) + bytes([0x10]) + b"q"), 100)


@pytest.mark.parametrize("size", [0, 1, 4, 7, 10])
def test_byte_grouping_is_undone(size):
    data = bytes(range(size))
    grouped = b"".join(data[group::4] for group in range(4))
    assert bg4_regroup(grouped) == data


def test_xorbs_and_shards_that_do_not_parse_raise_format_errors():
    chunk = bytes([0]) + (3).to_bytes(3, "little") + bytes([0]) + (3).to_bytes(3, "little") + b"abc"
    [ref] = xorb_chunks(chunk)
    assert chunk_bytes(chunk, ref) == b"abc"
    for bad in (
        b"",
        chunk[:-1],
        bytes([0]) + (3).to_bytes(3, "little") + bytes([1]) + (3).to_bytes(3, "little") + b"abc",
    ):
        with pytest.raises(XetFormatError):
            [chunk_bytes(bad, ref) for ref in xorb_chunks(bad)]
    good = _shard([("cd" * 32, 0, 2, 5)], sha256=b"\x33" * 32)
    [file] = shard_files(good)
    assert file.sha256 == "33" * 32 and file.segments[0].xorb == "cd" * 32 and file.segments[0].end == 2
    for bad in (good[:60], good[:-48], b"x" * 100, _shard([("cd" * 32, 3, 3, 5)], None)):
        with pytest.raises(XetFormatError):
            shard_files(bad)
