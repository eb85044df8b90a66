"""Imaginary rollouts published as a dataset version and read back with the real datasets client."""

import datasets
import numpy as np

from kalm.hub.datasets import publish_dataset
from kalm.imagine.label import label_rollout


def test_publish_then_load_dataset_by_tag(hub, clevr):
    from kalm.data import rollouts_to_dataset

    start = np.array([0.3, 0.0, 0.0, 0.0, -0.4, -0.4, 0.4, -0.4, 0.4, 0.4], dtype=np.float32)
    states = [start]
    for _ in range(3):
        states.append(states[-1] - np.array([0.13] + [0.0] * 9, dtype=np.float32))
    row = {
        "episode_id": 0,
        "env": "clevr",
        "source": "imaginary",
        "level": "rephrase",
        "goal_id": "red-left-of-blue",
        "instruction": "Swiftly shove the red globe on the left side of the blue globe",
        "seed": 1,
        **label_rollout(clevr, "red-left-of-blue", "train", np.stack(states), np.array([2, 2, 2])),
    }
    published = publish_dataset(
        rollouts_to_dataset([row], clevr.spec),
        "tester/kalm-clevr-imaginary-tiny",
        env="clevr",
        spec=clevr.spec,
        provenance={"seed": 1},
    )
    loaded = datasets.load_dataset(
        "tester/kalm-clevr-imaginary-tiny", revision=published.version, split="train"
    )
    back = loaded.with_format("numpy")[0]
    assert back["source"] == "imaginary" and back["level"] == "rephrase" and back["success"]
    np.testing.assert_array_equal(back["observations"], row["observations"])
