"""The settings of an imagination run (light: the pipeline's config imports it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kalm.envs.goals import NOVEL_LEVELS
from kalm.errors import ConfigError


@dataclass
class ImagineSettings:
    """What an imagination run decodes (together with the model, this fixes its output).

    Args:
        levels: goal levels to imagine for (default: the novel ones).
        per_goal: rollouts per goal.
        batch_size: rollouts decoded together.
        greedy: argmax actions (``False``: sample with ``temperature``).
        temperature: sampling temperature.
        horizon: maximum rollout length (default: the environment's).
        keep_implausible: keep rollouts that fail the plausibility checks (default: drop them).
    """

    levels: list[str] = field(default_factory=lambda: list(NOVEL_LEVELS))
    per_goal: int = 4
    batch_size: int = 64
    greedy: bool = True
    temperature: float = 1.0
    horizon: int | None = None
    keep_implausible: bool = False

    def __post_init__(self) -> None:
        if self.per_goal < 1 or self.batch_size < 1:
            raise ConfigError(f"per_goal={self.per_goal} and batch_size={self.batch_size} must be positive")
