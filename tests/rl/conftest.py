"""Fixtures of the offline-RL tests: real CLEVR data, a synthetic continuous task, the goal-embedding cache.

The goal encoder is the real all-MiniLM-L6-v2; its embeddings are cached in pytest's cache folder, so
only the first run of a checkout loads the model (~10 s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kalm.data import RolloutSpec, rollouts_to_dataset, write_rollouts

CONTINUOUS = RolloutSpec(obs_dim=6, action_dim=3, discrete=False, horizon=12)
CONTINUOUS_SENTENCES = ("move the block to the left", "push the block right", "lift the block up")


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """Small MLP updates run fastest on one thread, and 2 threads on 2 busy cores can be 50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def embedding_cache(request: pytest.FixtureRequest) -> str:
    """A goal-embedding cache folder that persists across test runs of this checkout."""
    return str(request.config.cache.mkdir("kalm-cache") / "goal_embeddings")


@pytest.fixture(autouse=True)
def kalm_cache(embedding_cache: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Encoders built with the default cache (``kalm evaluate``) use the test cache, not ``~/.cache/kalm``."""
    monkeypatch.setenv("KALM_CACHE", str(Path(embedding_cache).parent))


@pytest.fixture(scope="session")
def clevr_real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real CLEVR-Robot dataset folder: 300 behaviour-policy episodes of training goals."""
    from kalm.collect import collect_rollouts
    from kalm.envs import get_suite

    suite = get_suite("clevr")
    result = collect_rollouts(suite, episodes=300, seed=3, random_fraction=0.1, progress=False)
    return write_rollouts(
        result.dataset, tmp_path_factory.mktemp("clevr") / "real", env="clevr", spec=suite.spec
    )


def continuous_rows(episodes: int, *, seed: int = 0, source: str = "real") -> list[dict]:
    """Rollouts of a synthetic continuous task: a point in 6-d driven by ``a = tanh(-2 * obs[:3])``.

    The expert's action is a fixed function of the state, so BC can recover it exactly; episodes end
    (terminated) when the first three coordinates are near zero, else are truncated at the horizon.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for episode in range(episodes):
        observations = [rng.uniform(-1, 1, CONTINUOUS.obs_dim).astype(np.float32)]
        actions, rewards, terminated = [], [], False
        while len(actions) < CONTINUOUS.horizon and not terminated:
            action = np.tanh(-2.0 * observations[-1][:3]).astype(np.float32)
            step = np.concatenate([0.3 * action, np.zeros(3, np.float32)])
            observations.append((observations[-1] + step).astype(np.float32))
            distance = float(np.abs(observations[-1][:3]).max())
            terminated = distance < 0.1
            actions.append(action)
            rewards.append(10.0 if terminated else -distance)
        rows.append(
            {
                "episode_id": episode,
                "env": "point",
                "source": source,
                "level": "train" if source == "real" else "easy",
                "goal_id": f"g{episode % 3}",
                "instruction": CONTINUOUS_SENTENCES[episode % 3],
                "seed": seed,
                "length": len(actions),
                "observations": np.stack(observations),
                "actions": np.stack(actions),
                "rewards": np.asarray(rewards, np.float32),
                "terminated": terminated,
                "truncated": not terminated,
                "success": terminated,
            }
        )
    return rows


@pytest.fixture(scope="session")
def continuous_real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 40 synthetic continuous rollouts (source real)."""
    dataset = rollouts_to_dataset(continuous_rows(40), CONTINUOUS)
    return write_rollouts(dataset, tmp_path_factory.mktemp("point") / "real", env="point", spec=CONTINUOUS)


@pytest.fixture(scope="session")
def continuous_imaginary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 20 synthetic continuous rollouts labelled imaginary."""
    dataset = rollouts_to_dataset(continuous_rows(20, seed=1, source="imaginary"), CONTINUOUS)
    return write_rollouts(
        dataset, tmp_path_factory.mktemp("point") / "imaginary", env="point", spec=CONTINUOUS
    )
