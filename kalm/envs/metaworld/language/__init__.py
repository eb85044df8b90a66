"""Natural-language instructions of the Meta-World tasks: 20 sentences per task per level, written for kalm.

The training sentences phrase each task plainly; the rephrase level says the same tasks in different words and
styles (no sentence is shared with training); the unseen levels describe tasks the offline data never shows.
"""

from __future__ import annotations

from kalm.envs.goals import check_level
from kalm.envs.metaworld.language.rephrase import REPHRASE
from kalm.envs.metaworld.language.train import TRAIN
from kalm.envs.metaworld.language.unseen import EASY, HARD
from kalm.errors import UnknownNameError

SENTENCES: dict[str, dict[str, tuple[str, ...]]] = {
    "train": TRAIN,
    "rephrase": REPHRASE,
    "easy": EASY,
    "hard": HARD,
}
"""level -> task -> sentences."""


def sentences(level: str, task: str) -> tuple[str, ...]:
    """The instructions of ``task`` at ``level``."""
    bank = SENTENCES[check_level(level)]
    if task not in bank:
        raise UnknownNameError(f"Meta-World has no {level} task {task!r}; {level} tasks: {', '.join(bank)}")
    return bank[task]
