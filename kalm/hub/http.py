"""HTTP plumbing of the local Hub server: requests, bodies (sized or chunked), responses, Range (stdlib only)."""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kalm.hub.validate import StoreError

CHUNK = 1 << 20


@dataclass
class Response:
    """What a route answers: a JSON document, a file slice, or nothing."""

    status: int = 200
    body: Any = None
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
        self.query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        self.headers = handler.headers
        self.token = token
        self.max_body = max_body
        self.body_read = False

    @property
    def base_url(self) -> str:
        """The endpoint as the client named it (from the Host header)."""
        return f"http://{self.headers.get('Host') or '%s:%d' % self.handler.server.server_address[:2]}"

    @property
    def authorized(self) -> bool:
        """Whether the request carries the server's token (always true on a server without one)."""
        if self.token is None:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    def require_write(self) -> None:
        """Refuse a write without the server's token, like the real Hub (401)."""
        if not self.authorized:
            raise StoreError(401, "Invalid credentials in Authorization header")

    def body_chunks(self, limit: int | None = None) -> Iterator[bytes]:
        """Yield the request body in chunks; 413 once it exceeds ``limit`` bytes."""
        limit = self.max_body if limit is None else limit
        self.body_read = True
        rfile = self.handler.rfile
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            yield from _chunked(rfile, limit)
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        if remaining > limit:
            raise StoreError(413, f"Request body of {remaining} bytes exceeds the limit of {limit} bytes")
        while remaining > 0:
            chunk = rfile.read(min(CHUNK, remaining))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(chunk)
            yield chunk

    def body(self, limit: int | None = None) -> bytes:
        return b"".join(self.body_chunks(limit))

    def json(self, limit: int = 16 << 20) -> dict[str, Any]:
        """The body as a JSON object (also accepts a form-encoded body, as ``paths-info`` sends)."""
        raw = self.body(min(limit, self.max_body))
        is_form = self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
        if is_form and not raw.lstrip().startswith(b"{"):
            form = parse_qs(raw.decode())
            return {key: values if len(values) > 1 or key == "paths" else values[0] for key, values in form.items()}
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise StoreError(400, "Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise StoreError(400, "Request body must be a JSON object")
        return data


def _chunked(rfile: Any, limit: int) -> Iterator[bytes]:
    total = 0
    while True:
        line = rfile.readline(1024)
        if not line:
            raise ConnectionError("client closed the connection mid-body")
        size = int(line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            while rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                pass
            return
        total += size
        if total > limit:
            raise StoreError(413, f"Request body exceeds the limit of {limit} bytes")
        while size > 0:
            chunk = rfile.read(min(CHUNK, size))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            size -= len(chunk)
            yield chunk
        rfile.readline(16)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, length)`` for a single ``bytes=`` range; ``None`` for no/ignored range; 416 if unsatisfiable."""
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


def send(handler: BaseHTTPRequestHandler, response: Response, *, head: bool) -> None:
    """Write ``response`` (headers, then JSON or a zero-copy file slice)."""
    payload = b""
    if response.file is None and response.body is not None:
        payload = json.dumps(response.body).encode()
        response.headers.setdefault("Content-Type", "application/json; charset=utf-8")
    length = response.length if response.file is not None else len(payload)
    handler.send_response(response.status)
    for key, value in response.headers.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(length))
    handler.end_headers()
    if head:
        return
    if response.file is not None:
        with open(response.file, "rb") as source:
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
    headers = {"X-Error-Message": error.message.replace("\n", " ")[:1000]}
    if error.code:
        headers["X-Error-Code"] = error.code
    if error.status == 416:
        headers["Content-Range"] = "bytes */*"
    return Response(status=error.status, body={"error": error.message, **error.extra}, headers=headers)


def file_size(path: Path) -> int:
    return os.stat(path).st_size
