"""The environment interface of kalm: what a user implements to add an environment.

An ``EnvSuite`` bundles a gymnasium environment with everything the KALM pipeline needs around it:
goal sets per level, a success judge and a reward function that read observations alone (so
imaginary rollouts can be labelled without the simulator), and a behaviour policy for collecting
real data. Register a suite through the ``kalm.envs`` entry-point group (see ``kalm.envs``).

How an episode of each level is judged is data too (``protocol``): its horizon, and a one-line
description of its judge for reports. An episode ends at its first terminal state: the first state that
achieves the goal (``success``) or that fails it for good (``failure``, e.g. CLEVR-Robot's rule that a
ball the goal does not involve must not be moved away). ``outcome`` applies both to a rollout, so real
episodes, imaginary rollouts and grounding metrics are judged by one rule.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, cast

import gymnasium as gym
import numpy as np

from kalm.data.schema import RolloutSpec
from kalm.errors import ConfigError
from kalm.envs.goals import LEVELS, Goal, check_level
from kalm.errors import UnknownNameError

Policy = Callable[[np.ndarray, str], Any]
"""A behaviour policy: ``(observation, goal_id) -> action``."""
FloorPolicy = Callable[[np.random.Generator], Policy]
"""A trivial reference policy ("floor") built for one episode from that episode's random generator."""


@dataclass(frozen=True)
class LevelProtocol:
    """How an episode of one goal level runs and is judged.

    Attributes:
        horizon: the most actions an episode (real or imagined) takes.
        judge: one line saying what counts as success and failure, for reports.
    """

    horizon: int
    judge: str


@dataclass(frozen=True)
class Outcome:
    """How a rollout ended under its level's protocol: after ``length`` actions, with ``success`` or
    ``failure`` (both ``False``: it ran out of actions or was cut short)."""

    length: int
    success: bool
    failure: bool

    @property
    def terminated(self) -> bool:
        return self.success or self.failure


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
    replay_tolerance: float = 0.05
    """Imagined and replayed real states "part" once some dimension differs by more than this
    (``kalm.imagine.replay``)."""
    state_objects: tuple[str, ...] = ()
    """Names of the objects whose equal slices make up an observation, in order (CLEVR-Robot: the balls'
    colours), for a grounded LM that reads each object as its own token (``GroundingModule(object_tokens=
    True)``); empty when the observation has no such layout."""
    object_major_actions: bool = False
    """Whether discrete action ``a`` acts on object ``a // (action_dim // len(state_objects))`` (CLEVR-Robot:
    ``ball * 8 + direction``), for ``GroundingModule(object_actions=True)``."""
    object_action_names: tuple[str, ...] = ()
    """With ``object_major_actions``: the words naming action ``a``'s kind ``a % (action_dim //
    len(state_objects))`` (CLEVR-Robot: the push directions), whose embeddings start the kinds' vectors of
    ``GroundingModule(object_action_inputs=True)``; empty: random initial vectors."""

    @abstractmethod
    def make(self, **kwargs: Any) -> gym.Env:
        """A new environment instance. ``reset(options={"goal": id, "level": level})`` picks its goal."""

    @abstractmethod
    def goals(self, level: str) -> tuple[Goal, ...]:
        """All goals of ``level`` (one of ``kalm.envs.goals.LEVELS``)."""

    @abstractmethod
    def success(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        """For ``T + 1`` observations of one rollout, whether each of the last ``T`` achieves the goal."""

    def failure(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        """For ``T + 1`` observations of one rollout, whether each of the last ``T`` fails the goal for good
        (the episode ends there unsuccessfully). The default never fails."""
        return np.zeros(max(0, len(observations) - 1), dtype=bool)

    def protocol(self, level: str) -> LevelProtocol:
        """How episodes of ``level`` run and are judged; the default: the spec's horizon, the success
        judge."""
        check_level(level)
        return LevelProtocol(self.spec.horizon, f"success at any of {self.spec.horizon} steps")

    def outcome(self, goal_id: str, level: str, observations: np.ndarray) -> Outcome:
        """The outcome of a rollout's ``T + 1`` observations: it ends at the first state that succeeds or
        fails (success wins a tie, as a real step reports it), or after the level's horizon."""
        horizon = self.protocol(level).horizon
        observations = np.asarray(observations)[: horizon + 1]
        steps = len(observations) - 1
        success, failure = self.success(goal_id, observations), self.failure(goal_id, observations)
        ends = np.flatnonzero(success | failure)
        if not ends.size:
            return Outcome(steps, False, False)
        end = int(ends[0])
        return Outcome(end + 1, bool(success[end]), not bool(success[end]))

    def hindsight_candidates(self, goal_id: str, observations: np.ndarray) -> tuple[str, ...] | None:
        """The training goals other than ``goal_id`` a rollout's ``T + 1`` observations might show, for
        hindsight relabelling (:meth:`hindsight_goals` judges them), or ``None`` where relabelling does not
        apply: the default, for an environment whose training goals' judges cannot read each other's
        rollouts (Meta-World: each goal is its own task and scene)."""
        return None

    def hindsight_goals(self, goal_id: str, observations: np.ndarray) -> list[tuple[str, int]] | None:
        """The training goals a rollout truly achieves besides its own, each with the length its relabelled
        copy keeps: ``(goal, t)`` where the goal's own protocol (:meth:`outcome`) ends the first ``t`` actions
        in success, its judge did not already hold at the initial state, and it is a candidate of
        :meth:`hindsight_candidates` both for the whole rollout and for those ``t`` actions; ``None`` where
        the environment does not relabel (``hindsight_candidates`` returns ``None``)."""
        observations = np.asarray(observations)
        candidates = self.hindsight_candidates(goal_id, observations)
        if candidates is None:
            return None
        initial = np.stack([observations[0], observations[0]])  # "the rollout's first state, one step on"
        reached = []
        for other in candidates:
            if other == goal_id or self.success(other, initial)[0]:
                continue
            outcome = self.outcome(other, "train", observations)
            kept = observations[: outcome.length + 1]
            if outcome.success and other in (self.hindsight_candidates(goal_id, kept) or ()):
                reached.append((other, outcome.length))
        return reached

    def goal_kind(self, goal_id: str) -> str:
        """The kind of a goal, for per-kind breakdowns in reports (e.g. CLEVR-Robot's ``line-up``); default
        one kind."""
        return "goal"

    def state_layout(self, object_tokens: bool | Literal["auto"]) -> tuple[str, ...]:
        """The objects a grounded LM reads as one token each: ``state_objects`` with ``object_tokens``, none
        (one token per state) without, and whatever the environment declares with ``"auto"``. Raises a
        one-line ``ConfigError`` for object tokens on an environment that declares no objects."""
        if object_tokens == "auto":
            return self.state_objects
        if object_tokens and not self.state_objects:
            raise ConfigError(
                f"object_tokens=True needs an environment whose state is a list of named objects; "
                f"{self.name!r} declares none (EnvSuite.state_objects): set object_tokens to false or auto"
            )
        return self.state_objects if object_tokens else ()

    def floor_policies(self) -> Mapping[str, FloorPolicy]:
        """Trivial reference policies a learned policy must beat, by name, evaluated on the same cases as it.

        The default: uniformly random actions from the action space.
        """
        return {"uniform random": self._uniform_random}

    def _uniform_random(self, rng: np.random.Generator) -> Policy:
        space = self._action_space
        if self.spec.discrete:
            count = cast(gym.spaces.Discrete, space).n
            return lambda observation, goal_id: int(rng.integers(count))
        box = cast(gym.spaces.Box, space)
        low, high = box.low, box.high
        return lambda observation, goal_id: rng.uniform(low, high).astype(np.float32)

    def evaluation_options(self, level: str) -> dict[str, Any]:
        """Extra ``reset`` options of evaluation episodes (Meta-World: the test setting's distractor
        entity)."""
        return {}

    def action_agreement(self, predicted: Any, reference: Any) -> dict[str, bool]:
        """How a predicted action agrees with a reference (behaviour-policy) action, per criterion.

        The default: ``exact`` for discrete actions; ``direction within 45°`` of the action vectors otherwise.
        """
        if self.spec.discrete:
            return {"exact": int(predicted) == int(reference)}
        a, b = np.asarray(predicted, dtype=np.float64), np.asarray(reference, dtype=np.float64)
        norms = np.linalg.norm(a) * np.linalg.norm(b)
        return {"direction within 45°": bool(norms > 0 and a @ b >= np.cos(np.pi / 4) * norms)}

    def goal_slots(self, goal_id: str) -> dict[str, str]:
        """The parts of a goal a description must get right (CLEVR-Robot: source ball, reference ball,
        direction), for per-slot explanation accuracy; the default has one slot, the goal itself."""
        return {"goal": goal_id}

    def read_slots(self, text: str) -> dict[str, str | None]:
        """The slots a description states, read leniently (a slot it does not state is ``None``); the default
        reads the whole goal with the strict ``interpret``."""
        return {"goal": self.interpret(text)}

    @abstractmethod
    def rewards(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        """The ``T`` rewards of a rollout's ``T + 1`` observations, from the observations alone."""

    @abstractmethod
    def behaviour_policy(self, *, noise: float, rng: np.random.Generator) -> Policy:
        """A policy that reaches training goals, perturbed by ``noise`` (its meaning is the suite's:
        CLEVR-Robot takes a random action with that probability, Meta-World adds Gaussian noise of that
        scale)."""

    def render_observation(
        self, observation: np.ndarray, *, size: int = 160, goal_id: str | None = None
    ) -> np.ndarray | None:
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
        """``reset`` options that start the environment at ``observation`` (e.g. to replay an imagined
        rollout's actions from its initial state), if it can be placed there; the default has none: the reset
        seed that produced a recorded initial state reproduces it."""
        return {}

    project_in_imagination: bool = True
    """Whether imagination puts decoded states through ``project_states`` unless
    ``ImagineSettings.project_states`` says otherwise: a repair that keeps rollouts, against judging the
    unrepaired state implausible and dropping the rollout (which filters out a model that, e.g., pushes a ball
    through a wall)."""

    def project_states(self, states: np.ndarray, initial: np.ndarray) -> np.ndarray:
        """Decoded states ``[B, obs_dim]`` put back on what the observation guarantees by construction, given
        each rollout's initial state ``[B, obs_dim]`` (e.g. a clipped coordinate inside its clip range). Not a
        physics check: ``implausibility`` judges the projected states. The default keeps the states."""
        return states

    def project_state_tensors(self, states: Any, initial: Any) -> Any:
        """``project_states`` on torch tensors on the decoding device, for imagination on a GPU (no host copy
        per decoded state). ``None`` (the default): imagination copies the states to the host and calls
        ``project_states``. A suite whose projection is a few tensor operations overrides both,
        identically."""
        return None

    def implausibility(self, observations: np.ndarray) -> str | None:
        """Why a rollout's observations ``[T + 1, obs_dim]`` cannot be real, or ``None`` if they can.

        Reasons, checked in this order: ``non_finite`` (NaN/inf), ``out_of_workspace`` (outside
        ``observation_low``/``observation_high``), ``exceeds_dynamics`` (a step changes some dimension by
        more than ``max_step_change``).
        """
        observations = np.asarray(observations, dtype=np.float64)
        if not np.isfinite(observations).all():
            return "non_finite"
        if (
            self.observation_low is not None
            and self.observation_high is not None
            and ((observations < self.observation_low).any() or (observations > self.observation_high).any())
        ):
            return "out_of_workspace"
        if (
            self.max_step_change is not None
            and len(observations) > 1
            and (np.abs(np.diff(observations, axis=0)) > self.max_step_change).any()
        ):
            return "exceeds_dynamics"
        return None

    def interpret(self, text: str) -> str | None:
        """The id of the training goal ``text`` states exactly, or ``None``.

        Strict: the text must be one of a training goal's sentences up to case, spacing and final punctuation;
        anything else (a malformed or self-contradictory description, a near miss) counts as no goal. Used to
        judge generated goal text (rollout explanations) on the structured goal, not on string similarity.
        """
        return self._sentence_goals.get(normalize_sentence(text))

    @cached_property
    def _action_space(self) -> gym.Space[Any]:
        """The environment's action space, read once (a floor episode must not build a whole environment)."""
        env = self.make()
        space = env.action_space
        env.close()
        return space

    @cached_property
    def _sentence_goals(self) -> dict[str, str]:
        return {
            normalize_sentence(sentence): goal.id
            for goal in self.goals("train")
            for sentence in goal.sentences
        }

    @cached_property
    def _goal_index(self) -> dict[str, dict[str, Goal]]:
        return {level: {goal.id: goal for goal in self.goals(level)} for level in LEVELS}


def normalize_sentence(text: str) -> str:
    """``text`` lower-cased, with runs of whitespace as one space and no surrounding space or final
    ``.!?``."""
    return re.sub(r"\s+", " ", text).strip().rstrip(".!?").strip().lower()
