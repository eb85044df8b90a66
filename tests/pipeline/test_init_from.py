"""``kalm run --ground.model.init_from REPO[@REV]``: the grounding stage starts from a grounded model,
publishes the child under its own name with the parent recorded, and grounds again when the parent gets a new
version."""

from __future__ import annotations

from pathlib import Path

import pytest

from kalm.errors import ConfigError
from kalm.pipeline import stages
from kalm.pipeline.cli import parse
from kalm.pipeline.stages import grounding, parent_name
from kalm.pipeline.state import RunState

ROOT = Path(__file__).resolve().parents[2]
PARENT = "pinit/kalm-clevr-grounded-tiny-llama"


@pytest.fixture
def real(hub, clevr):
    from kalm.collect import collect_rollouts
    from kalm.hub.datasets import publish_dataset

    dataset = collect_rollouts(clevr, episodes=30, seed=1, progress=False).dataset
    published = publish_dataset(dataset, "pinit/kalm-clevr-real", env="clevr", spec=clevr.spec)
    return {"repo_id": published.repo_id, "commit": published.commit}


def push_parent() -> str:
    from kalm.grounding.hub import push_grounded
    from kalm.grounding.model import GroundedLM, GroundingConfig

    model = GroundedLM(
        GroundingConfig(
            backbone="tiny-llama", obs_dim=10, action_dim=40, discrete=True, finetune="full", codec_hidden=32
        )
    )
    return push_grounded(model, PARENT, env="clevr").commit


def test_the_grounding_stage_starts_from_the_parent_and_regrounds_on_its_new_version(
    real, clevr, tmp_path, monkeypatch
):
    first = push_parent()
    config = parse(
        [
            "--config",
            str(ROOT / "configs/run/quick.yaml"),
            "--org",
            "pinit",
            "--out",
            str(tmp_path),
            "--ground.model.init_from",
            PARENT,
            "--ground.trainer.max_steps",
            "2",  # no validation (every 400 steps)
            "--ground.model.explain_episodes",
            "1",
            "--ground.model.match_goals",
            "1",
        ]
    )
    state = RunState(tmp_path)
    record = grounding(config, clevr, state, real, tmp_path)
    assert record["repo_id"] == "pinit/kalm-clevr-grounded-tiny-llama-from-clevr"
    assert record["parent"] == {"repo_id": PARENT, "revision": "v1.0", "commit": first}
    assert grounding(config, clevr, state, real, tmp_path) == record  # same parent commit: done before

    push_parent()  # v1.1 of the parent: its latest version is a new input, so the stage runs again
    monkeypatch.setattr(stages, "_fit_grounding", lambda *args: {"fitted": "again"})  # (the fit is as above)
    assert grounding(config, clevr, state, real, tmp_path) == {"fitted": "again"}


def test_ground_pull_and_init_from_exclude_each_other(clevr, tmp_path):
    config = parse(["--ground.pull", PARENT, "--ground.model.init_from", PARENT])
    with pytest.raises(ConfigError, match=r"ground.pull .* and ground.model.init_from .* exclude each other"):
        grounding(config, clevr, RunState(tmp_path), {"commit": "x"}, tmp_path)


def test_a_child_repo_is_named_after_the_parent_environment():
    assert parent_name("kalm/kalm-clevr-grounded-smollm2-135m-8l@v1.0") == "clevr"
    assert parent_name("kalm/kalm-babyai-grounded-smollm2-135m-8l-from-clevr") == "babyai"
    assert parent_name("runs/my-model/") == "my-model"
