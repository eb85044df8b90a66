"""The environment interface of kalm: what a user implements to add an environment.

An ``EnvSuite`` bundles a gymnasium environment with everything the KALM pipeline needs around it:
goal sets per level, a success judge and a reward function that read observations alone (so
imaginary rollouts can be labelled without the simulator), and a behaviour policy for collecting
real data. Register a suite in ``kalm.envs.SUITES``.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property
from typing import Any

import gymnasium as gym
import numpy as np

from kalm.data.schema import RolloutSpec
from kalm.envs.goals import LEVELS, Goal, check_level
from kalm.errors import UnknownNameError

Policy = Callable[[np.ndarray, str], Any]
"""A behaviour policy: ``(observation, goal_id) -> action``."""


class EnvSuite(ABC):
    """One environment of the KALM pipeline (see the module docstring)."""

    name: str
    """Short name used on the command line and in dataset repo names, e.g. ``clevr``."""
    gym_id: str
    """The gymnasium id the environment is registered under, e.g. ``kalm/CLEVR-Robot-v0``."""
    spec: RolloutSpec
    observation_low: np.ndarray | None = None
    """Lowest plausible value of each observation dimension (``None``: no workspace check)."""
    observation_high: np.ndarray | None = None
    max_step_change: np.ndarray | None = None
    """Largest plausible change of each observation dimension in one step (``None``: no dynamics check)."""

    @abstractmethod
    def make(self, **kwargs: Any) -> gym.Env:
        """A new environment instance. ``reset(options={"goal": id, "level": level})`` picks its goal."""

    @abstractmethod
    def goals(self, level: str) -> tuple[Goal, ...]:
        """All goals of ``level`` (one of ``kalm.envs.goals.LEVELS``)."""

    @abstractmethod
    def success(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        """For ``T + 1`` observations of one rollout, whether each of the last ``T`` achieves the goal."""

    @abstractmethod
    def rewards(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        """The ``T`` rewards of a rollout's ``T + 1`` observations, from the observations alone."""

    @abstractmethod
    def behaviour_policy(self, *, noise: float, rng: np.random.Generator) -> Policy:
        """A policy that reaches training goals, perturbed by ``noise`` (its meaning is the suite's: CLEVR-Robot
        takes a random action with that probability, Meta-World adds Gaussian noise of that scale)."""

    def render_observation(self, observation: np.ndarray, *, size: int = 160,
                           goal_id: str | None = None) -> np.ndarray | None:
        """An RGB image of the scene in ``observation`` (e.g. an imagined state), or ``None`` if the
        environment cannot place its scene from an observation. ``goal_id`` names the state's goal, for
        environments whose scene depends on it (Meta-World: the task's scene)."""
        return None

    def goal(self, level: str, goal_id: str) -> Goal:
        """The goal ``goal_id`` of ``level``; an unknown id raises an error with examples of valid ones."""
        try:
            return self._goal_index[check_level(level)][goal_id]
        except KeyError:
            examples = ", ".join(repr(goal.id) for goal in self.goals(level)[:3])
            raise UnknownNameError(
                f"{self.name} has no {level} goal {goal_id!r}; valid ids look like {examples}"
            ) from None

    def start_options(self, observation: np.ndarray) -> dict[str, Any]:
        """``reset`` options that start the environment at ``observation`` (e.g. to replay an imagined rollout's
        actions from its initial state), if it can be placed there; the default has none: the reset seed
        that produced a recorded initial state reproduces it."""
        return {}

    def project_states(self, states: np.ndarray, initial: np.ndarray) -> np.ndarray:
        """Decoded states ``[B, obs_dim]`` put back on what the observation guarantees by construction, given
        each rollout's initial state ``[B, obs_dim]`` (e.g. a clipped coordinate inside its clip range). Not a
        physics check: ``implausibility`` judges the projected states. The default keeps the states."""
        return states

    def implausibility(self, observations: np.ndarray) -> str | None:
        """Why a rollout's observations ``[T + 1, obs_dim]`` cannot be real, or ``None`` if they can.

        Reasons, checked in this order: ``non_finite`` (NaN/inf), ``out_of_workspace`` (outside
        ``observation_low``/``observation_high``), ``exceeds_dynamics`` (a step changes some dimension by
        more than ``max_step_change``).
        """
        observations = np.asarray(observations, dtype=np.float64)
        if not np.isfinite(observations).all():
            return "non_finite"
        if self.observation_low is not None and self.observation_high is not None and (
            (observations < self.observation_low).any() or (observations > self.observation_high).any()
        ):
            return "out_of_workspace"
        if self.max_step_change is not None and len(observations) > 1 and (
            np.abs(np.diff(observations, axis=0)) > self.max_step_change
        ).any():
            return "exceeds_dynamics"
        return None

    def interpret(self, text: str, *, cutoff: float = 0.8) -> str | None:
        """The id of the training goal whose sentence is closest to ``text``, or ``None`` if none is close.

        Used to judge generated goal text (rollout explanations) on the structured goal, not on strings.
        """
        text = text.strip().rstrip(".")
        if text in self._sentence_goals:
            return self._sentence_goals[text]
        match = difflib.get_close_matches(text, list(self._sentence_goals), n=1, cutoff=cutoff)
        return self._sentence_goals[match[0]] if match else None

    @cached_property
    def _sentence_goals(self) -> dict[str, str]:
        return {sentence: goal.id for goal in self.goals("train") for sentence in goal.sentences}

    @cached_property
    def _goal_index(self) -> dict[str, dict[str, Goal]]:
        return {level: {goal.id: goal for goal in self.goals(level)} for level in LEVELS}
