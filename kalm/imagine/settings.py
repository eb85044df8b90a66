"""The settings of an imagination run (light: the pipeline's config imports it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kalm.envs.goals import NOVEL_LEVELS
from kalm.errors import ConfigError

DEFAULT_PER_GOAL = {"rephrase": 32, "easy": 64, "hard": 16}
"""Imagined rollouts per goal of each novel level: most where imagination is cheap and right (easy goals take
a few steps; rollouts that leave the table stop at once), as the paper's 5,600 / 72,400 / 1,680 split."""


@dataclass
class ImagineSettings:
    """What an imagination run decodes (together with the model, this fixes its output).

    Args:
        levels: goal levels to imagine for (default: the novel ones).
        per_goal: rollouts per goal: one number for every level, or one per level (``{easy: 64, hard: 4}``, a
            count for each imagined level; the paper imagined 5,600 / 72,400 / 1,680 rollouts for rephrase /
            easy / hard).
        batch_size: rollouts decoded together.
        greedy: argmax actions (default ``False``: sample with ``temperature``, several samples per goal).
        temperature: sampling temperature: one for every level, or one per level
            (``{rephrase: 0.7, hard: 1.0}``, a value for each imagined level).
        horizon: a cap on rollout length (default: each level's protocol horizon, ``EnvSuite.protocol``).
        keep_implausible: keep rollouts that fail the plausibility checks (default: drop them).
        project_states: put each decoded state back on what the environment guarantees
            (``EnvSuite.project_states``: CLEVR's walls, Meta-World's empty slots, BabyAI's carried objects)
            before it is judged and fed back; ``False`` decodes them as the model says, so a state the
            projection would repair is judged implausible and its rollout dropped; ``None`` (default): the
            environment's choice (``EnvSuite.project_in_imagination``; CLEVR drops, the others repair).
    """

    levels: list[str] = field(default_factory=lambda: list(NOVEL_LEVELS))
    per_goal: int | dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PER_GOAL))
    batch_size: int = 64
    greedy: bool = False
    temperature: float | dict[str, float] = 1.0
    horizon: int | None = None
    keep_implausible: bool = False
    project_states: bool | None = None

    def __post_init__(self) -> None:
        if isinstance(self.per_goal, dict) and not set(self.levels) <= set(self.per_goal):
            raise ConfigError(
                f"per_goal names levels {sorted(self.per_goal)}; expected a count for each of "
                f"the imagined levels {sorted(self.levels)}"
            )
        if isinstance(self.temperature, dict) and not set(self.levels) <= set(self.temperature):
            raise ConfigError(
                f"temperature names levels {sorted(self.temperature)}; expected a value for each of "
                f"the imagined levels {sorted(self.levels)}"
            )
        if min(self.level_temperatures().values(), default=1.0) <= 0:
            raise ConfigError(f"temperature={self.temperature} must be positive")
        if min(self.goal_counts().values(), default=1) < 1 or self.batch_size < 1:
            raise ConfigError(f"per_goal={self.per_goal} and batch_size={self.batch_size} must be positive")

    def goal_counts(self) -> dict[str, int]:
        """Rollouts per goal for each imagined level."""
        if isinstance(self.per_goal, dict):
            return {level: int(self.per_goal[level]) for level in self.levels}
        return dict.fromkeys(self.levels, int(self.per_goal))

    def level_temperatures(self) -> dict[str, float]:
        """Sampling temperature of each imagined level."""
        if isinstance(self.temperature, dict):
            return {level: float(self.temperature[level]) for level in self.levels}
        return dict.fromkeys(self.levels, float(self.temperature))
