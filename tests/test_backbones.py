"""Packaged backbones: a one-time conversion into the cache leaves the caller's random state alone."""

import random

import numpy as np
import pytest
import torch

from kalm.backbones import SMOLLM2, load_backbone, load_tokenizer


@pytest.mark.timeout(600)  # converts SmolLM2's GGUF once into an empty cache: ~25 s alone
def test_a_cold_cache_leaves_the_random_state_where_a_warm_one_does(tmp_path, monkeypatch):
    # The first run on a machine converts the GGUF; every later run finds it. Both must then initialise
    # the codec and LoRA from the same numbers, or a seed names two different groundings.
    monkeypatch.setenv("KALM_CACHE", str(tmp_path))
    draws = []
    for cache in ("cold", "warm"):
        torch.manual_seed(0), np.random.seed(0), random.seed(0)
        load_tokenizer(SMOLLM2)
        load_backbone(SMOLLM2, num_layers=1)
        draws.append((torch.randn(4), np.random.rand(4), random.random()))
        assert (tmp_path / "models" / "SmolLM2-135M-Instruct" / "model.safetensors").is_file(), cache
    (torch_cold, numpy_cold, python_cold), (torch_warm, numpy_warm, python_warm) = draws
    torch.testing.assert_close(torch_cold, torch_warm, rtol=0, atol=0)
    np.testing.assert_array_equal(numpy_cold, numpy_warm)
    assert python_cold == python_warm
