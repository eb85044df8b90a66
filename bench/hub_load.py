"""Load on the local hub: requests/s and latency of listings, small-file downloads and 20-way commits.

    .venv/bin/python bench/hub_load.py [--repos 50] [--clients 8] [--seconds 3] \\
        [--committers 20] [--commits 10]

Bounded and loopback only: the server runs in a child process (as ``ensure_endpoint`` starts it) over a
temporary store holding ``--repos`` carded dataset repos. Every row drives the server from plain
``http.client`` keep-alive connections in threads (one connection per client) and times each request:

- ``baseline: whoami``: ``GET /api/whoami-v2``, which touches no store file (the HTTP floor; ratio 1);
- ``listing``: ``GET /api/datasets?full=true`` over every repo (repo.json, refs.json, head commit, card);
- ``small-file resolve``: ``GET /<repo>/resolve/main/<16-byte file>`` across the repos;
- ``20-way commits``: ``--committers`` threads each sending ``--commits`` NDJSON commits of one small file
  to the same repo and branch (every commit contends for that repo's lock); the row then checks that
  the history holds every commit.

The first three rows run for ``--seconds`` each with ``--clients`` connections. ``ratio`` is the row's
requests/s over the baseline's. The header gives the 1-minute load average before and after: the
clients share the CPUs with the server, and other work on the machine lowers every row.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

Request = tuple[str, str, bytes | None]
CARD = "---\nlicense: apache-2.0\ntask_categories:\n- robotics\ntags:\n- KALM\n---\n# bench repo {i}\n"


class Target:
    """The server's address and a one-off request helper."""

    def __init__(self, url: str) -> None:
        split = urlsplit(url)
        self.host, self.port = split.hostname or "127.0.0.1", split.port or 80

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method: str, path: str, body: bytes | None = None) -> bytes:
        connection = self.connect()
        try:
            connection.request(method, path, body=body, headers=HEADERS)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        if response.status >= 400:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:200]!r}")
        return data


HEADERS = {"Authorization": "Bearer bench", "Content-Type": "application/json"}


def commit_body(summary: str, files: dict[str, bytes]) -> bytes:
    """An NDJSON commit adding ``files`` (path -> bytes), as huggingface_hub sends small files."""
    lines = [{"key": "header", "value": {"summary": summary}}]
    lines += [
        {
            "key": "file",
            "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"},
        }
        for path, data in files.items()
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


def populate(target: Target, repos: int) -> list[str]:
    names = [f"bench/repo-{i:03d}" for i in range(repos)]
    for i, name in enumerate(names):
        target.call(
            "POST",
            "/api/repos/create",
            json.dumps({"name": name.split("/")[1], "organization": "bench", "type": "dataset"}).encode(),
        )
        body = commit_body(
            "card and file", {"README.md": CARD.format(i=i).encode(), "small.txt": b"0123456789abcdef"}
        )
        target.call("POST", f"/api/datasets/{name}/commit/main", body)
    return names


def drive(
    target: Target,
    clients: int,
    make: Callable[[int, int], Request],
    *,
    seconds: float | None = None,
    count: int | None = None,
) -> tuple[list[float], float, int]:
    """Run ``clients`` threads issuing ``make(client, n)`` until ``seconds`` pass or each did ``count``."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = time.perf_counter()
    deadline = start + (seconds or 1e9)

    def client(index: int) -> None:
        connection = target.connect()
        n = 0
        while time.perf_counter() < deadline and (count is None or n < count):
            method, path, body = make(index, n)
            began = time.perf_counter()
            connection.request(method, path, body=body, headers=HEADERS)
            response = connection.getresponse()
            response.read()
            latencies[index].append(time.perf_counter() - began)
            errors[index] += response.status >= 400
            n += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [x for per in latencies for x in per], time.perf_counter() - start, sum(errors)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--committers", type=int, default=20)
    parser.add_argument("--commits", type=int, default=10, help="commits per committer")
    args = parser.parse_args()

    from kalm.hub.local_server import start_local_server

    load_before = os.getloadavg()[0]
    with (
        tempfile.TemporaryDirectory(prefix="kalm-hub-load-") as folder,
        start_local_server(Path(folder)) as server,
    ):
        target = Target(server.url)
        names = populate(target, args.repos)
        target.call(
            "POST", "/api/repos/create", json.dumps({"name": "commits", "organization": "bench"}).encode()
        )
        rows = []
        timed = {
            "baseline: whoami": lambda c, n: ("GET", "/api/whoami-v2", None),
            f"listing ({args.repos} repos, full)": lambda c, n: ("GET", "/api/datasets?full=true", None),
            "small-file resolve": lambda c, n: (
                "GET",
                f"/datasets/{names[(c * 7 + n) % len(names)]}/resolve/main/small.txt",
                None,
            ),
        }
        for label, make in timed.items():
            latencies, wall, errors = drive(target, args.clients, make, seconds=args.seconds)
            rows.append((label, args.clients, latencies, wall, errors))

        def commit(c: int, n: int) -> tuple[str, str, bytes]:
            files = {f"c{c}/{n}.txt": f"{c}:{n}".encode()}
            return "POST", "/api/models/bench/commits/commit/main", commit_body(f"committer {c} #{n}", files)

        latencies, wall, errors = drive(target, args.committers, commit, count=args.commits)
        rows.append((f"{args.committers}-way commits", args.committers, latencies, wall, errors))
        history = json.loads(target.call("GET", "/api/models/bench/commits/commits/main"))
        lost = args.committers * args.commits - (len(history) - 1)
    load_after = os.getloadavg()[0]

    print(
        f"kalm hub load, loopback, {os.cpu_count()} CPUs, load average {load_before:.1f} -> {load_after:.1f}"
    )
    print(
        f"{'row':<28}{'clients':>8}{'requests':>10}{'req/s':>9}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'ratio':>7}"
    )
    baseline = len(rows[0][2]) / rows[0][3]
    for label, clients, latencies, wall, errors in rows:
        rate = len(latencies) / wall
        print(
            f"{label:<28}{clients:>8}{len(latencies):>10}{rate:>9.0f}{percentile(latencies, 0.5) * 1e3:>9.1f}"
            f"{percentile(latencies, 0.99) * 1e3:>9.1f}{errors:>8}{rate / baseline:>7.2f}"
        )
    print(f"commits lost: {lost} of {args.committers * args.commits}")


if __name__ == "__main__":
    main()
