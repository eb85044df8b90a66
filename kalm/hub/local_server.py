"""The local Hub server as a child process of this one: started on a free loopback port, stopped at exit.

The child is ``python -m kalm.hub.server`` over a store folder; it also stops as soon as the pipe to this
process closes (when this process is killed), so it never outlives its parent.
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from kalm.errors import HubError
from kalm.hub.server.paths import default_root
from kalm.hub.server.serve import READY_PREFIX

logger = logging.getLogger(__name__)
START_TIMEOUT_S = 30.0


class LocalServer:
    """A local hub server running in a child process; :meth:`stop` ends it (also registered at exit)."""

    def __init__(self, process: subprocess.Popen[str], url: str, root: Path, token: str | None) -> None:
        self.process, self.url, self.root, self.token = process, url, root, token
        atexit.register(self.stop)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server and wait for it; kill it if it does not stop within ``timeout`` seconds."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream:
                stream.close()

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_local_server(
    root: str | Path | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    timeout: float = START_TIMEOUT_S,
) -> LocalServer:
    """Start ``python -m kalm.hub.server`` in the background and wait until it listens."""
    root = Path(root).expanduser() if root else default_root()
    root.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "kalm.hub.server",
        "--root",
        str(root),
        "--host",
        host,
        "--port",
        str(port),
        "--exit-on-stdin-eof",
    ]
    env = dict(os.environ, KALM_HUB_TOKEN=token or "")
    with open(root / "server.log", "ab") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, env=env
        )
    line = _read_ready_line(process, timeout)
    if not line.startswith(READY_PREFIX):
        process.kill()
        process.wait()
        raise HubError(f"the local hub server for {root} did not start (see {root / 'server.log'}): {line!r}")
    url = line[len(READY_PREFIX) :].split()[0]
    logger.info("local hub server at %s (store %s)", url, root)
    return LocalServer(process, url, root, token)


def _read_ready_line(process: subprocess.Popen[str], timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(process.stdout.readline() if process.stdout else ""))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    return box[0].strip() if box else f"no answer within {timeout:.0f} s"
