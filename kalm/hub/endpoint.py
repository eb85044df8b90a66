"""The one place that decides which Hub kalm talks to, and points every HF client at it.

Order of precedence in :func:`ensure_endpoint`:

1. the ``endpoint`` argument (e.g. a ``--hub.endpoint`` option);
2. ``$KALM_HUB_ENDPOINT``, then ``$HF_ENDPOINT`` (the user named one, e.g. ``https://huggingface.co``);
3. otherwise a local server (:mod:`kalm.hub.server`) started in a child process on a free loopback port,
   storing under ``$KALM_HUB_ROOT`` or ``~/.cache/kalm/hub``; it stops when this process exits (and, if
   this process is killed, as soon as the pipe to it closes: no orphans).

``huggingface_hub``, ``datasets`` and ``transformers`` read ``HF_ENDPOINT``, ``HF_HUB_DISABLE_XET`` and the
offline switches at import time. :func:`configure` sets the environment variables (for clients imported
later and for child processes) **and** patches the modules already imported, so the order of imports
does not matter. For a local server it also disables Xet (the server accepts Xet uploads too, but Git LFS
is faster on loopback: about 4x for incompressible files, which Xet chunks and hashes), turns the offline
switches off (loopback traffic only) and provides a token (the server's, or any string when it has none).
It also makes ``huggingface_hub`` hand downloads over in :data:`DOWNLOAD_CHUNK` pieces (see
:func:`_tune_downloads`).
"""

from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from kalm.errors import ConfigError, HubError
from kalm.hub.paths import default_root
from kalm.hub.server import READY_PREFIX

logger = logging.getLogger(__name__)
HF_HUB = "https://huggingface.co"
LOCAL_TOKEN = "kalm-local"
START_TIMEOUT_S = 30.0
DOWNLOAD_CHUNK = 1 << 20


@dataclass(frozen=True)
class Endpoint:
    """A configured Hub: its URL, the token clients send, and whether it is a loopback kalm server."""

    url: str
    token: str | None
    local: bool


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
    command = [sys.executable, "-m", "kalm.hub.server", "--root", str(root), "--host", host, "--port", str(port),
               "--exit-on-stdin-eof"]
    env = dict(os.environ, KALM_HUB_TOKEN=token or "")
    with open(root / "server.log", "ab") as log:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                   env=env)
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


def configure(url: str, token: str | None = None, *, local: bool | None = None) -> Endpoint:
    """Point huggingface_hub, datasets and transformers (imported or not) at ``url``."""
    url = url.rstrip("/")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ConfigError(f"hub endpoint {url!r} is not an http(s) URL")
    local = _is_loopback(url) if local is None else local
    token = token or os.environ.get("HF_TOKEN") or (LOCAL_TOKEN if local else None)
    os.environ["HF_ENDPOINT"] = url
    if token:
        os.environ["HF_TOKEN"] = token
    if local:
        os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0",
                          TRANSFORMERS_OFFLINE="0")
    _patch_imported_clients(url, local)
    _tune_downloads()
    return Endpoint(url=url, token=token, local=local)


def _tune_downloads() -> None:
    """Let ``hf_hub_download`` write what it receives in 1 MiB pieces instead of 10 MiB ones.

    httpx assembles each piece in a ``BytesIO`` and slices it out again; at 10 MiB these copies and the
    fresh memory pages they touch cost as much as the transfer (a 100 MB local download: ~0.5 s -> ~0.27 s).
    """
    from huggingface_hub import constants

    constants.DOWNLOAD_CHUNK_SIZE = DOWNLOAD_CHUNK


def _is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def _patch_imported_clients(url: str, local: bool) -> None:
    """Apply the switches to modules that read them at import time and are already imported."""
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.ENDPOINT = url
        constants.HUGGINGFACE_CO_URL_TEMPLATE = url + "/{repo_id}/resolve/{revision}/{filename}"
        constants.HF_URL_HOSTS = frozenset(constants.HF_URL_HOSTS | {urlsplit(url).hostname or ""})
        if local:
            constants.HF_HUB_DISABLE_XET = True
            constants.HF_HUB_OFFLINE = False
    config = sys.modules.get("datasets.config")
    if config is not None:
        config.HF_ENDPOINT = url
        config.HUB_DATASETS_URL = url + "/datasets/{repo_id}/resolve/{revision}/{path}"
        if local:
            config.HF_HUB_OFFLINE = config.HF_DATASETS_OFFLINE = False
    filesystem = sys.modules.get("huggingface_hub.hf_file_system")
    if filesystem is not None:
        filesystem.HfFileSystem.clear_instance_cache()


_ACTIVE: Endpoint | None = None
_SERVER: LocalServer | None = None
_LOCK = threading.Lock()


def ensure_endpoint(
    endpoint: str | None = None, *, token: str | None = None, root: str | Path | None = None
) -> Endpoint:
    """Decide the endpoint (see the module docstring), start the local server if needed, configure clients.

    Calling it again returns the same endpoint; the local server is started at most once per process.
    """
    global _ACTIVE, _SERVER
    with _LOCK:
        named = endpoint or os.environ.get("KALM_HUB_ENDPOINT") or os.environ.get("HF_ENDPOINT")
        if _ACTIVE is not None and (named is None or named.rstrip("/") == _ACTIVE.url):
            return _ACTIVE
        if named:
            _ACTIVE = configure(named, token or os.environ.get("KALM_HUB_TOKEN") or None)
            return _ACTIVE
        if _SERVER is None or _SERVER.process.poll() is not None:
            _SERVER = start_local_server(root, token=token or os.environ.get("KALM_HUB_TOKEN") or None)
        _ACTIVE = configure(_SERVER.url, _SERVER.token, local=True)
        return _ACTIVE


def active_endpoint() -> Endpoint:
    """The endpoint chosen by :func:`ensure_endpoint` (which is called with defaults if it was not yet)."""
    return _ACTIVE or ensure_endpoint()


def shutdown_local_server() -> None:
    """Stop the server :func:`ensure_endpoint` started, if any, and forget the endpoint."""
    global _ACTIVE, _SERVER
    with _LOCK:
        if _SERVER is not None:
            _SERVER.stop()
        if _ACTIVE is not None and _ACTIVE.local and os.environ.get("HF_ENDPOINT") == _ACTIVE.url:
            del os.environ["HF_ENDPOINT"]
        _ACTIVE = _SERVER = None


def use_cache_home(folder: str | Path) -> None:
    """Make the HF clients cache under ``folder`` (like ``HF_HOME``), also when they are already imported."""
    home = Path(folder)
    os.environ.update(HF_HOME=str(home), HF_HUB_CACHE=str(home / "hub"), HF_DATASETS_CACHE=str(home / "datasets"))
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HOME = str(home)
        constants.HF_HUB_CACHE = constants.HUGGINGFACE_HUB_CACHE = str(home / "hub")
        constants.HF_ASSETS_CACHE = str(home / "assets")
        constants.HF_XET_CACHE = str(home / "xet")
    config = sys.modules.get("datasets.config")
    if config is not None:
        config.HF_CACHE_HOME = str(home)
        config.HF_DATASETS_CACHE = home / "datasets"
        config.HF_MODULES_CACHE = home / "modules"
        config.DOWNLOADED_DATASETS_PATH = home / "datasets" / "downloads"
        config.EXTRACTED_DATASETS_PATH = home / "datasets" / "downloads" / "extracted"
