"""Goals are data: an id, the level they belong to, and their natural-language sentences.

The structured form a judge reads is environment-specific and recovered from the id
(``EnvSuite.goal_spec``), so datasets only need to store ``goal_id`` and ``level``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kalm.errors import UnknownNameError

LEVELS = ("train", "rephrase", "easy", "hard")
"""Goal levels: the training goals of the offline data, then the three novel levels of the paper."""
NOVEL_LEVELS = LEVELS[1:]


@dataclass(frozen=True)
class Goal:
    """One goal: ``id`` names its structured form, ``sentences`` are its phrasings at ``level``."""

    id: str
    level: str
    sentences: tuple[str, ...]

    def sentence(self, rng: np.random.Generator) -> str:
        """One of the goal's sentences, drawn with ``rng``."""
        return self.sentences[int(rng.integers(len(self.sentences)))]


def check_level(level: str) -> str:
    """Return ``level`` if it is a known level, else raise an error listing the valid ones."""
    if level not in LEVELS:
        raise UnknownNameError(f"unknown goal level {level!r}; expected one of {', '.join(LEVELS)}")
    return level
