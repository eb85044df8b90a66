"""HTTP plumbing of the local Hub server: requests, bodies (sized or chunked), responses, Range (stdlib
only)."""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import BaseServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from kalm.hub.server.payload import as_object, parse_json
from kalm.hub.server.validate import StoreError

CHUNK = 1 << 20
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")


@dataclass
class Response:
    """What a route answers: a JSON document, raw bytes, a file slice, or nothing."""

    status: int = 200
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    offset: int = 0
    length: int = 0


class Request:
    """One parsed request, with lazy access to its body."""

    def __init__(self, handler: BaseHTTPRequestHandler, token: str | None, max_body: int) -> None:
        self.handler = handler
        self.method = handler.command
        split = urlsplit(handler.path)
        self.path = split.path
        self.queries = parse_qs(split.query, max_num_fields=256)
        self.query = {key: values[-1] for key, values in self.queries.items()}
        self.headers = handler.headers
        self.token = token
        self.max_body = max_body
        self.body_read = False  # the body was started (or there is none to read)
        self.body_complete = False  # the body was read to its end: the connection can serve another request

    @property
    def base_url(self) -> str:
        """The endpoint as the client named it (from the Host header)."""
        return f"http://{self.headers.get('Host') or host_port(self.handler.server)}"

    @property
    def authorized(self) -> bool:
        """Whether the request carries the server's token (always true on a server without one)."""
        if self.token is None:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(errors="replace"), f"Bearer {self.token}".encode())

    def require_write(self) -> None:
        """Refuse a write without the server's token, like the real Hub (401)."""
        if not self.authorized:
            raise StoreError(401, "Invalid credentials in Authorization header")

    def body_chunks(self, limit: int | None = None) -> Iterator[bytes]:
        """Yield the request body in chunks; 413 once it exceeds ``limit`` bytes, 400 for broken framing."""
        limit = self.max_body if limit is None else limit
        self.body_read = True
        rfile = self.handler.rfile
        if is_chunked(self.headers):
            yield from _chunked(rfile, limit)
            self.body_complete = True
            return
        remaining = declared_length(self.headers)
        if remaining > limit:
            raise StoreError(413, f"Request body of {remaining} bytes exceeds the limit of {limit} bytes")
        while remaining > 0:
            chunk = rfile.read(min(CHUNK, remaining))
            if not chunk:
                raise _cut_body()
            remaining -= len(chunk)
            yield chunk
        self.body_complete = True

    def body(self, limit: int | None = None) -> bytes:
        return b"".join(self.body_chunks(limit))

    def json(self, limit: int = 16 << 20) -> dict[str, Any]:
        """The body as a JSON object (also accepts a form-encoded body, as ``paths-info`` sends)."""
        raw = self.body(min(limit, self.max_body))
        is_form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        if is_form and not raw.lstrip().startswith(b"{"):
            try:
                form = parse_qs(raw.decode(), max_num_fields=10_000)
            except (UnicodeDecodeError, ValueError):
                raise StoreError(400, "Request body is not a valid form") from None
            return {
                key: values if len(values) > 1 or key == "paths" else values[0]
                for key, values in form.items()
            }
        return as_object(parse_json(raw or b"{}", "Request body"), "Request body")


def _cut_body() -> StoreError:
    """The client stopped sending mid-body: answered with a 400 (it may still read) and the connection
    closed."""
    return StoreError(400, "Request body ended before its declared length")


def declared_length(headers: Any) -> int:
    """The ``Content-Length`` of a request (0 when absent); 400 unless it is one non-negative decimal
    number."""
    values = headers.get_all("Content-Length") or []
    if not values:
        return 0
    if len(set(values)) != 1 or not values[0].strip().isdigit() or not values[0].strip().isascii():
        raise StoreError(400, f"Invalid Content-Length header {', '.join(values)[:100]!r}")
    return int(values[0])


def is_chunked(headers: Any) -> bool:
    """Whether the body is chunked; 400 for any other transfer coding (the server knows only ``chunked``)."""
    coding = ",".join(headers.get_all("Transfer-Encoding") or []).strip().lower()
    if coding and coding != "chunked":
        raise StoreError(400, f"Unsupported Transfer-Encoding {coding[:100]!r}: only 'chunked' is accepted")
    return coding == "chunked"


def _chunked(rfile: Any, limit: int) -> Iterator[bytes]:
    total = 0
    while True:
        size = _chunk_size(rfile.readline(1026))
        if size == 0:
            for _ in range(100):  # trailer lines, then the final empty line
                if rfile.readline(8192) in (b"\r\n", b"\n", b""):
                    return
            raise StoreError(400, "Chunked body: too many trailer lines")
        total += size
        if total > limit:
            raise StoreError(413, f"Request body exceeds the limit of {limit} bytes")
        while size > 0:
            chunk = rfile.read(min(CHUNK, size))
            if not chunk:
                raise _cut_body()
            size -= len(chunk)
            yield chunk
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise StoreError(400, "Chunked body: a chunk is not followed by CRLF")


def _chunk_size(line: bytes) -> int:
    if not line:
        raise _cut_body()
    digits = line.split(b";")[0].strip()
    if not line.endswith(b"\n") or not digits or len(digits) > 16 or any(c not in HEX_DIGITS for c in digits):
        raise StoreError(400, f"Chunked body: invalid chunk size line {line[:40]!r}")
    return int(digits, 16)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, length)`` for a single ``bytes=`` range; ``None`` for no/ignored range; 416 if
    unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes=") :].strip().partition("-")
    try:
        if first == "":
            length = min(int(last), size)
            start = size - length
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            length = end - start + 1
    except ValueError:
        return None
    if start >= size or length <= 0 or start < 0:
        raise StoreError(416, f"Range {header!r} not satisfiable for {size} bytes")
    return start, length


def host_port(server: BaseServer) -> str:
    """``host:port`` of a TCP server (typeshed types ``server_address`` for every address family)."""
    host, port = cast("tuple[Any, ...]", server.server_address)[:2]  # IPv4 2-tuple or IPv6 4-tuple
    return "%s:%d" % (host, port)


def send(handler: BaseHTTPRequestHandler, response: Response, *, head: bool) -> None:
    """Write ``response`` (headers, then JSON or a zero-copy file slice).

    A file is opened before the status line goes out, so a blob that vanished gets an error status
    instead of a 200 followed by a cut connection.
    """
    source = None
    if response.file is not None:
        try:
            source = open(response.file, "rb")
        except OSError as error:
            response = error_response(
                StoreError(
                    409,
                    f"Stored file {response.file.name} is unreadable "
                    f"({error.strerror}); run `kalm hub fsck --repair`",
                    "RepoDamaged",
                )
            )
    try:
        _send(handler, response, source, head=head)
    finally:
        if source is not None:
            source.close()


def _send(handler: BaseHTTPRequestHandler, response: Response, source: Any, *, head: bool) -> None:
    payload = b""
    if response.raw is not None:
        payload = response.raw
    elif source is None and response.body is not None:
        payload = json.dumps(response.body).encode()
        response.headers.setdefault("Content-Type", "application/json; charset=utf-8")
    length = response.length if source is not None else len(payload)
    handler.send_response(response.status)
    for key, value in response.headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(length))
    handler.end_headers()
    if head:
        return
    if source is not None:
        _send_file(handler, source, response.offset, response.length)
    elif payload:
        handler.wfile.write(payload)


def _send_file(handler: BaseHTTPRequestHandler, source: Any, offset: int, length: int) -> None:
    try:
        handler.connection.sendfile(source, offset, length)
    except (AttributeError, OSError, ValueError):
        source.seek(offset)
        remaining = length
        while remaining > 0:
            chunk = source.read(min(CHUNK, remaining))
            if not chunk:
                break
            handler.wfile.write(chunk)
            remaining -= len(chunk)


def error_response(error: StoreError) -> Response:
    """The real Hub's error shape: JSON ``{"error"}`` plus ``X-Error-Code``/``X-Error-Message`` headers."""
    # headers are latin-1 on the wire: a message naming a non-latin-1 path is escaped there (the body keeps
    # it)
    headers = {
        "X-Error-Message": error.message.replace("\n", " ")[:1000]
        .encode("ascii", "backslashreplace")
        .decode()
    }
    if error.code:
        headers["X-Error-Code"] = error.code
    if error.status == 416:
        headers["Content-Range"] = "bytes */*"
    return Response(status=error.status, body={"error": error.message, **error.extra}, headers=headers)


def file_size(path: Path) -> int:
    return os.stat(path).st_size
