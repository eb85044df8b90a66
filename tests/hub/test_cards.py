"""Cards: huggingface_hub's card data for the YAML front matter, the hub_cards/ templates for the prose."""

from __future__ import annotations

import pytest
import yaml

from kalm.errors import ConfigError
from kalm.hub.cards import dataset_card, model_card

INFO = {
    "env": "fake-v0",
    "codebase_version": "1.0",
    "rollout_spec": {"obs_dim": 4, "action_dim": 3, "discrete": True},
    "totals": {
        "episodes": 1500,
        "transitions": 9000,
        "success_rate": 0.25,
        "mean_length": 6.0,
        "levels": {"train": 1000, "easy": 500},
        "sources": {"real": 1500},
    },
    "provenance": {
        "seed": 3,
        "source_datasets": [{"repo_id": "org/real", "revision": "v1.0", "commit": "c0ffee"}],
    },
}


def _front(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---")[1])


def test_dataset_card_front_matter_and_body():
    card = dataset_card("org/kalm-fake-real", "v1.2", INFO, pretty_name=None, description="", license="mit")
    assert _front(card) == {
        "license": "mit",
        "pretty_name": "KALM fake-v0 rollouts",
        "size_categories": ["1K<n<10K"],
        "task_categories": ["robotics", "reinforcement-learning"],
        "tags": ["KALM", "offline-rl", "rollouts", "fake-v0"],
        "source_datasets": ["org/real"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data/*.parquet"}]}],
    }
    assert "| levels | easy: 500, train: 1000 |" in card and "| content version (tag) | `v1.2` |" in card
    assert "- source dataset: `org/real` at `c0ffee`" in card and "(T, integers in [0, 3))" in card
    assert 'load_dataset("org/kalm-fake-real", revision="v1.2", split="train")' in card
    assert "from kalm.hub.datasets import pull_dataset" in card


def test_dataset_card_says_how_many_rows_are_hindsight_copies():
    info = {**INFO, "provenance": {**INFO["provenance"], "hindsight_copies": 600}}
    card = dataset_card("org/kalm-fake-real", "v1.0", info, pretty_name=None, description="", license="mit")
    assert "- hindsight copies: `600` of the rows are real episodes relabelled" in card
    plain = dataset_card("org/kalm-fake-real", "v1.0", INFO, pretty_name=None, description="", license="mit")
    assert "hindsight" not in plain


def test_model_card_front_matter_and_body():
    card = model_card(
        "org/kalm-fake-grounded",
        "v1.0",
        {"source_datasets": [{"repo_id": "org/real"}]},
        env="fake-v0",
        base_model="tiny-llama",
        pretty_name="Grounded: tiny",
        description="",
        license="apache-2.0",
        library_name="peft",
    )
    assert _front(card) == {
        "license": "apache-2.0",
        "pretty_name": "Grounded: tiny",
        "library_name": "peft",
        "pipeline_tag": "text-generation",
        "tags": ["KALM", "grounding", "fake-v0"],
        "datasets": ["org/real"],
        "base_model": "tiny-llama",
    }
    assert "# Grounded: tiny" in card and 'pull_model("org/kalm-fake-grounded", revision="v1.0")' in card


def test_a_template_variable_without_a_value_is_named(tmp_path, monkeypatch):
    (tmp_path / "model.md").write_text("---\n{{ card_data }}\n---\n# {{ pretty_name }} by {{ author }}\n")
    monkeypatch.setenv("KALM_HUB_CARDS", str(tmp_path))
    with pytest.raises(ConfigError, match=r"model.md needs the field\(s\) author"):
        model_card(
            "o/m",
            "v1.0",
            {},
            env="e",
            base_model="b",
            pretty_name=None,
            description="",
            license="mit",
            library_name="transformers",
        )
    (tmp_path / "model.md").write_text("# no front matter\n")
    with pytest.raises(ConfigError, match="did not render to YAML front matter"):
        model_card(
            "o/m",
            "v1.0",
            {},
            env="e",
            base_model="b",
            pretty_name=None,
            description="",
            license="mit",
            library_name="transformers",
        )
