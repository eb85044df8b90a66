"""The local Hub-compatible server: ``kalm hub serve`` or ``python -m kalm.hub.server`` (stdlib only).

It answers the endpoints the real clients call (see ``shared/design/hub.md`` and :mod:`kalm.hub.server.api`)
and keeps its state in a :class:`kalm.hub.server.store.Store` (on-disk format documented there). It binds to
127.0.0.1 unless told otherwise and, when started with a token, refuses writes without it.

From code::

    server = HubServer(("127.0.0.1", 0), root="~/.cache/kalm/hub")   # port 0: a free port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ...  # server.url is the endpoint
    server.shutdown(); server.server_close()

:func:`kalm.hub.local_server.start_local_server` runs it in a child process instead, which is what kalm does.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kalm.hub.server.api import Hub, dispatch
from kalm.hub.server.http import (
    Request,
    Response,
    declared_length,
    error_response,
    host_port,
    is_chunked,
    send,
)
from kalm.hub.server.store import Store
from kalm.hub.server.validate import StoreError

logger = logging.getLogger(__name__)
READY_PREFIX = "kalm hub listening on "
DEFAULT_MAX_BODY = 1 << 30
IDLE_TIMEOUT_S = 120


class HubHandler(BaseHTTPRequestHandler):
    """Turns each HTTP request into a :class:`Request`, routes it, and writes the :class:`Response`."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S  # a client silent this long (mid-request or idle between requests) is dropped
    disable_nagle_algorithm = True  # else a response's header and body writes wait ~40 ms for delayed ACKs
    server: HubServer

    def do_GET(self) -> None:  # http.server's naming
        self._handle()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET  # unknown routes: 404/405

    def _handle(self) -> None:
        request = Request(self, self.server.hub.token, self.server.max_body)
        try:
            _check_declared_size(self, self.server)
            response = dispatch(self.server.hub, request)
        except StoreError as error:
            response = error_response(error)
        except (ConnectionError, TimeoutError) as error:
            logger.info("%s %s: connection lost (%s)", self.command, self.path, error)
            self.close_connection = True
            return
        except Exception:  # the server must answer, not die
            logger.exception("%s %s failed", self.command, self.path)
            response = error_response(StoreError(500, "Internal server error"))
        if not request.body_complete and _may_have_body(self):
            response.headers["Connection"] = "close"  # the rest of the body would be read as the next request
            self.close_connection = True
        try:
            send(self, response, head=self.command == "HEAD")
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
        logger.debug("%s " + format, self.address_string(), *args)


def _check_declared_size(handler: BaseHTTPRequestHandler, server: HubServer) -> None:
    """Refuse a body announced bigger than the limit (413) or with a broken length (400) before routing."""
    limit = server.hub.max_lfs_bytes if handler.path.startswith("/lfs-upload/") else server.max_body
    is_chunked(handler.headers)
    declared = declared_length(handler.headers)
    if declared > limit:
        raise StoreError(413, f"Request body of {declared} bytes exceeds the limit of {limit} bytes")


def _may_have_body(handler: BaseHTTPRequestHandler) -> bool:
    """Whether unread body bytes may follow (any framing header counts, even a broken one)."""
    length = handler.headers.get("Content-Length")
    return bool(handler.headers.get("Transfer-Encoding")) or (length is not None and length.strip() != "0")


class HubServer(ThreadingHTTPServer):
    """A threading HTTP server over one store root."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self,
        address: tuple[str, int],
        *,
        root: str | Path,
        token: str | None = None,
        max_body: int = DEFAULT_MAX_BODY,
        max_lfs_bytes: int = 50 << 30,
    ) -> None:
        store = Store(root)
        store.blobs.clean_tmp()
        self.hub = Hub(
            store=store, token=token or None, max_commit_bytes=max_body, max_lfs_bytes=max_lfs_bytes
        )
        self.max_body = max_body
        super().__init__(address, HubHandler)

    @property
    def url(self) -> str:
        return f"http://{host_port(self)}"


def serve(
    root: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    exit_on_stdin_eof: bool = False,
) -> None:
    """Serve until SIGINT/SIGTERM (or stdin closing, when asked); prints the ready line with the URL."""
    server = HubServer((host, port), root=root, token=token, max_body=max_body)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if exit_on_stdin_eof:
        threading.Thread(target=_wait_stdin_eof, args=(stop,), daemon=True).start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"{READY_PREFIX}{server.url} (store {server.hub.store.root})", flush=True)
    try:
        stop.wait()
    finally:
        server.shutdown()
        server.server_close()
        logger.info("kalm hub at %s stopped", server.url)


def _wait_stdin_eof(stop: threading.Event) -> None:
    """The parent holds our stdin open; EOF means it died, so we stop too (no orphans)."""
    try:
        while os.read(sys.stdin.fileno(), 1024):  # raw reads: a buffered reader would delay exit
            pass
    finally:
        stop.set()


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``kalm hub serve`` (shared with ``python -m kalm.hub.server``)."""
    parser.add_argument(
        "--root", default=None, help="store folder (default: $KALM_HUB_ROOT or ~/.cache/kalm/hub)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free port, printed at start)")
    parser.add_argument(
        "--token",
        default=os.environ.get("KALM_HUB_TOKEN"),
        help="refuse writes without this bearer token (default: $KALM_HUB_TOKEN; none)",
    )
    parser.add_argument(
        "--max-body-mb",
        type=int,
        default=DEFAULT_MAX_BODY >> 20,
        help="largest accepted commit/API body in MiB (413 beyond)",
    )
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)


def run_from_args(args: argparse.Namespace) -> int:
    """Start serving with parsed ``add_serve_arguments`` options."""
    from kalm.hub.server.paths import default_root

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(
        args.root or default_root(),
        host=args.host,
        port=args.port,
        token=args.token,
        max_body=args.max_body_mb << 20,
        exit_on_stdin_eof=args.exit_on_stdin_eof,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kalm.hub.server", description="Serve a local kalm hub.")
    add_serve_arguments(parser)
    return run_from_args(parser.parse_args(argv))


__all__ = ["HubServer", "Response", "main", "serve"]
