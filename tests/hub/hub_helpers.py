"""Tiny valid rollout datasets for the hub tests."""

from __future__ import annotations

import numpy as np

from kalm.data import RolloutSpec, rollouts_to_dataset

SPEC = RolloutSpec(obs_dim=4, action_dim=3, discrete=True, horizon=10)


def make_rollouts(episodes: int = 6, *, seed: int = 0, source: str = "real", obs_dim: int = 4):
    """``episodes`` random rollouts of a fake env with the rollout schema (discrete actions)."""
    spec = RolloutSpec(obs_dim=obs_dim, action_dim=3, discrete=True, horizon=10)
    rng = np.random.default_rng(seed)
    rows = []
    for episode in range(episodes):
        length = int(rng.integers(1, spec.horizon + 1))
        rows.append(
            {
                "episode_id": episode,
                "env": "fake-v0",
                "source": source,
                "level": ["train", "easy"][episode % 2],
                "goal_id": f"goal-{episode % 3}",
                "instruction": f"push ball {episode % 3} left",
                "seed": seed,
                "length": length,
                "observations": rng.normal(size=(length + 1, spec.obs_dim)).astype(np.float32),
                "actions": rng.integers(0, spec.action_dim, size=length).tolist(),
                "rewards": rng.random(length).astype(np.float32).tolist(),
                "terminated": bool(episode % 2),
                "truncated": not bool(episode % 2),
                "success": bool(episode % 2),
            }
        )
    return rollouts_to_dataset(rows, spec), spec


def raw_request(method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | None = None):
    """One plain HTTP request (no HF client): ``(status, headers, body bytes)``."""
    import http.client
    from urllib.parse import urlsplit

    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.hostname, split.port, timeout=30)
    try:
        path = split.path + (f"?{split.query}" if split.query else "")
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw_exchange(url: str, data: bytes, *, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as-is (request line, headers and body, however malformed) and parse the one answer.

    Raises if the server closes the connection without answering or does not answer within ``timeout``.
    """
    import http.client
    import socket
    from urllib.parse import urlsplit

    split = urlsplit(url)
    with socket.create_connection((split.hostname, split.port), timeout=timeout) as sock:
        sock.sendall(data)
        response = http.client.HTTPResponse(sock, method=data.split(b" ", 1)[0].decode(errors="replace"))
        response.begin()
        return response.status, dict(response.getheaders()), response.read()
