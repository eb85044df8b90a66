"""datasets and transformers talking to the local server: load_dataset, push_to_hub, from_pretrained."""

from __future__ import annotations

import datasets
import torch
from transformers import LlamaConfig, LlamaForCausalLM


def test_dataset_push_to_hub_then_load_by_tag_and_branch(api, repo_name):
    first = datasets.Dataset.from_dict({"x": list(range(50)), "y": [f"row {i}" for i in range(50)]})
    first.push_to_hub(repo_name)
    api.create_tag(repo_name, tag="v1.0", repo_type="dataset")
    datasets.Dataset.from_dict({"x": [7, 8], "y": ["a", "b"]}).push_to_hub(repo_name, revision="exp")
    tagged = datasets.load_dataset(repo_name, revision="v1.0", split="train")
    assert tagged["x"] == list(range(50)) and tagged["y"][3] == "row 3"
    assert datasets.load_dataset(repo_name, revision="exp", split="train")["x"] == [7, 8]
    assert len(datasets.load_dataset(repo_name, split="train")) == 50  # main is untouched by the branch


def test_model_push_to_hub_and_from_pretrained_by_tag(api, repo_name):
    config = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=128,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    model.push_to_hub(repo_name)
    api.create_tag(repo_name, tag="v1.0")
    LlamaForCausalLM(config).push_to_hub(repo_name)  # a later, different main
    loaded = LlamaForCausalLM.from_pretrained(repo_name, revision="v1.0")
    for (name, expected), actual in zip(
        model.state_dict().items(), loaded.state_dict().values(), strict=True
    ):
        assert torch.equal(expected, actual), name
