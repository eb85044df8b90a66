"""Fuzzing the request parsers (hypothesis, bounded): every request gets an answer, and never a 5xx.

Deterministic (``derandomize``) and bounded: a fixed number of examples, each request on its own
connection with a 10 s socket timeout, against an in-process server over a temporary store.
"""

from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from kalm.hub.server.http import _chunked, parse_range
from kalm.hub.server.serve import HubServer
from kalm.hub.server.validate import StoreError
from kalm.hub.server.xet import XetFormatError, chunk_bytes, lz4_frame_decompress, shard_files, xorb_chunks
from tests.hub.hub_helpers import raw_exchange

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
REPO = "fuzz/repo"
LZ4_HEADER = bytes.fromhex("04224d18404000")
KEYS = [
    "files",
    "paths",
    "path",
    "tag",
    "message",
    "name",
    "organization",
    "type",
    "private",
    "objects",
    "oid",
    "size",
    "sample",
    "operation",
    "startingPoint",
    "gated",
    "visibility",
    "content",
    "encoding",
    "summary",
    "description",
    "parentCommit",
    "key",
    "value",
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 2**40)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["main", "a.txt", "dir/", "../x", "refs/pr/1", "v1.0", "AAAA", "!!", "e3b0" * 16]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), children, max_size=5),
    max_leaves=12,
)
segments = st.sampled_from(
    [
        "main",
        "v1.0",
        "refs%2Fpr%2F1",
        "refs%2Fheads%2Fmain",
        "a.txt",
        "..",
        "%2e%2e",
        "%00",
        "x" * 300,
        "%ff%fe",
        "fuzz",
        "repo",
    ]
) | st.text(max_size=12).map(lambda t: quote(t, safe=""))
paths = st.one_of(
    st.tuples(
        st.sampled_from(["models", "datasets"]),
        st.sampled_from([REPO, "fuzz/none", "x" * 200 + "/y"]),
        st.sampled_from(
            [
                "",
                "/refs",
                "/commit",
                "/preupload",
                "/tag",
                "/branch",
                "/tree",
                "/paths-info",
                "/commits",
                "/settings",
                "/revision",
            ]
        ),
        st.lists(segments, max_size=3),
    ).map(lambda p: f"/api/{p[0]}/{p[1]}{p[2]}" + "".join("/" + s for s in p[3])),
    st.tuples(
        st.sampled_from(["", "datasets/"]),
        st.sampled_from([REPO, "fuzz/none"]),
        st.lists(segments, max_size=3),
    ).map(lambda p: f"/{p[0]}{p[1]}/resolve" + "".join("/" + s for s in p[2])),
    st.sampled_from(
        [
            "/api/repos/create",
            "/api/repos/delete",
            "/api/models",
            "/api/datasets?filter=x&full=1",
            f"/{REPO}.git/info/lfs/objects/batch",
            "/lfs-upload/" + "0" * 64 + "?size=3&ticket=x",
            "/api/validate-yaml",
            "/api/whoami-v2",
        ]
    ),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    server = HubServer(("127.0.0.1", 0), root=tmp_path_factory.mktemp("fuzz-store"))
    for kind in ("model", "dataset"):
        server.hub.store.create_repo(kind, REPO)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _body(draw: st.DrawFn, path: str) -> bytes:
    if path.endswith("/commit") or "/commit/" in path:
        lines = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "key": st.sampled_from(
                            ["header", "file", "lfsFile", "deletedFile", "deletedFolder", "x"]
                        ),
                        "value": json_values,
                    }
                ),
                max_size=4,
            )
        )
        return "\n".join(json.dumps(line) for line in lines).encode()
    return draw(st.one_of(json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=64)))


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]))
    path = draw(paths)
    body = _body(draw, path) if method in ("POST", "PUT", "DELETE") else b""
    framing = draw(st.sampled_from(["length", "chunked", "bad-length", "bad-chunks", "none"]))
    headers = ["Host: fuzz", "Authorization: Bearer x"]
    if draw(st.booleans()):
        headers.append(
            "Content-Type: "
            f"{draw(st.sampled_from(['application/json', 'application/x-www-form-urlencoded']))}"
        )
    if draw(st.booleans()):
        headers.append(
            f"Range: {draw(st.sampled_from(['bytes=0-1', 'bytes=-5', 'bytes=9-2', 'bytes=a-b', 'x']))}"
        )
    if framing == "length":
        headers.append(f"Content-Length: {len(body)}")
    elif framing == "bad-length":
        headers.append(f"Content-Length: {draw(st.sampled_from(['abc', '-1', '1e3', '', ' ', '0x10', '١']))}")
    elif framing in ("chunked", "bad-chunks"):
        headers.append("Transfer-Encoding: chunked")
        size = (
            f"{len(body):x}" if framing == "chunked" else draw(st.sampled_from(["zz", "-1", "", "1;" * 600]))
        )
        body = f"{size}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    else:
        body = b""
    return (
        f"{method} {path} HTTP/1.1\r\n{''.join(h + chr(13) + chr(10) for h in headers)}\r\n".encode() + body
    )


def _exchange(server: HubServer, data: bytes) -> int:
    """One request on its own connection; the write side is closed after it, so nothing can wait for more."""
    host, port = server.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        import http.client

        response = http.client.HTTPResponse(sock, method=data.split(b" ", 1)[0].decode())
        response.begin()
        response.read()
        return response.status


@FUZZ
@given(data=requests())
def test_every_request_gets_an_answer_below_500(server, data):
    status = _exchange(server, data)
    assert 200 <= status < 500, (status, data[:300])


@FUZZ
@given(
    header=st.text(max_size=30) | st.from_regex(r"bytes=-?[0-9]{0,4}-?[0-9]{0,4}", fullmatch=True),
    size=st.integers(0, 10_000),
)
def test_range_parsing_is_total(header, size):
    try:
        span = parse_range(header, size)
    except StoreError as error:
        assert error.status == 416
        return
    assert span is None or (0 <= span[0] < size and 0 < span[1] <= size - span[0])


@FUZZ
@given(
    raw=st.binary(max_size=200)
    | st.lists(st.binary(max_size=20), max_size=5).map(
        lambda parts: b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    )
)
def test_chunked_parsing_refuses_with_400_or_returns_the_body(raw):
    try:
        body = b"".join(_chunked(io.BytesIO(raw), limit=1000))
    except StoreError as error:
        assert error.status in (400, 413) and error.message
        return
    assert len(body) <= len(raw)


def test_a_cut_body_gets_400_before_the_connection_closes(server):
    head = b'POST /api/repos/create HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"name"'
    assert _exchange(server, head) == 400
    status, headers, _ = raw_exchange(
        f"http://{server.server_address[0]}:{server.server_address[1]}",
        b"GET /api/models HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    assert status == 200  # and the server still serves


@FUZZ
@given(raw=st.binary(max_size=300), limit=st.integers(0, 1 << 17))
def test_xet_parsers_refuse_garbage_with_format_errors(raw, limit):
    for parse in (
        lambda: [chunk_bytes(raw, c) for c in xorb_chunks(raw)],
        lambda: shard_files(raw),
        lambda: lz4_frame_decompress(raw, limit),
        lambda: lz4_frame_decompress(LZ4_HEADER + raw, limit),
    ):
        try:
            parse()
        except XetFormatError:
            pass
