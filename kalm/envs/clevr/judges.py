"""Success judges and the reward function of CLEVR-Robot, computed from observations alone.

Both work on arrays of 10-d observations (the balls' x, y), vectorised over time, so imaginary
rollouts produced by the grounded LLM can be judged and labelled without the simulator. Constants
follow the reference implementation (see ``kalm_reference.md`` §4.3, §4.4, §12).
"""

from __future__ import annotations

import numpy as np

from kalm.envs.clevr.physics import NUM_BALLS
from kalm.envs.clevr.specs import UNIT, AllOf, Gather, GoalSpec, LineUp, Relation, Step

SUCCESS_DISTANCE = 0.39
"""A relation holds when the balls are closer than this ...  (reference: 0.13 x 3)"""
SECTOR_COS = np.cos(np.deg2rad(45.0))
"""... and the source lies within +-45 degrees of the named direction from the reference ball."""
LINE_COS = np.cos(np.deg2rad(30.0))
"""Consecutive balls of a line-up are within 30 degrees of +x."""
GATHER_RADIUS = 0.325
STEP_DISTANCE = 0.06
"""An easy (one-step) goal holds once the ball moved this far along the direction: half an axis push."""
STEP_COS = np.cos(np.deg2rad(60.0))
"""... within +-60 degrees of it, so that a diagonal push towards that side counts too."""

PROGRESS_SCALE = 10.0
SUCCESS_REWARD = 100.0
DISTURB_THRESHOLD = 0.1
FAILURE_THRESHOLD = 0.2
"""An episode fails once a ball the goal does not involve lies this far from its start (reference
``env.py``)."""
FAILURE_PENALTY = 10.0


def positions(observations: np.ndarray) -> np.ndarray:
    """``(..., 10)`` observations as ``(..., 5, 2)`` ball positions."""
    observations = np.asarray(observations, dtype=np.float64)
    return observations.reshape(*observations.shape[:-1], NUM_BALLS, 2)


def success(spec: GoalSpec, observations: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Whether each observation in ``observations`` (``(N, 10)``) achieves the goal; ``(N,)`` bool.

    ``initial`` is the episode's first observation: one-step goals are judged relative to it.
    """
    balls = positions(observations)
    if isinstance(spec, Relation):
        return _relation_holds(spec, balls)
    if isinstance(spec, AllOf):
        return np.all([_relation_holds(relation, balls) for relation in spec.relations], axis=0)
    if isinstance(spec, Step):
        along, across = _step_displacement(spec, balls, positions(initial))
        return (along >= STEP_DISTANCE) & (along >= STEP_COS * np.hypot(along, across))
    return progress(spec, observations, initial) >= _max_progress(spec)


def failure(spec: GoalSpec, observations: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Whether each observation in ``observations`` (``(N, 10)``) fails the goal for good: a ball the goal
    does not involve lies more than ``FAILURE_THRESHOLD`` from where it started (``initial``); ``(N,)``
    bool."""
    uninvolved = [ball for ball in range(NUM_BALLS) if ball not in spec.balls]
    balls = positions(observations)
    if not uninvolved:
        return np.zeros(balls.shape[:-2], dtype=bool)
    moved = np.linalg.norm(balls[..., uninvolved, :] - positions(initial)[uninvolved], axis=-1)
    return moved.max(axis=-1) > FAILURE_THRESHOLD


def progress(spec: GoalSpec, observations: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """A score that grows as observations approach the goal; rewards are its scaled increments.

    Relations: minus the source-reference distance. One-step goals: displacement along the direction.
    Compound goals: the number of satisfied parts (relations, line-up pairs, gathered balls).
    """
    balls = positions(observations)
    if isinstance(spec, Relation):
        return -np.linalg.norm(balls[..., spec.src, :] - balls[..., spec.dst, :], axis=-1)
    if isinstance(spec, Step):
        return _step_displacement(spec, balls, positions(initial))[0]
    if isinstance(spec, AllOf):
        return np.sum([_relation_holds(relation, balls) for relation in spec.relations], axis=0).astype(float)
    if isinstance(spec, LineUp):
        gaps = balls[..., spec.order[1:], :] - balls[..., spec.order[:-1], :]
        aligned = gaps[..., 0] >= LINE_COS * np.linalg.norm(gaps, axis=-1)
        return aligned.sum(axis=-1).astype(float)
    distances = np.linalg.norm(balls - balls[..., spec.center : spec.center + 1, :], axis=-1)
    return (distances < GATHER_RADIUS).sum(axis=-1).astype(float) - 1.0  # the centre itself


def rewards(spec: GoalSpec, observations: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
    """Rewards of the ``T`` transitions between ``T + 1`` consecutive observations.

    ``10 x`` progress increment, ``+100`` on reaching success, minus the step's displacement of balls the goal
    does not involve when it exceeds 0.1, and ``-10`` on a failure (``failure``, unless the state succeeds).
    ``initial`` is the episode's first observation, ``observations[0]`` by default (pass it when scoring a
    later slice).
    """
    observations = np.asarray(observations, dtype=np.float64)
    initial = observations[0] if initial is None else np.asarray(initial, dtype=np.float64)
    reached = success(spec, observations[1:], initial)
    return _rewards(spec, observations, initial, reached, failure(spec, observations[1:], initial) & ~reached)


def transition(
    spec: GoalSpec, before: np.ndarray, after: np.ndarray, initial: np.ndarray
) -> tuple[float, bool, bool]:
    """One real step's reward, success and failure (a success is never a failure), each judged once."""
    observations = np.stack([before, after]).astype(np.float64)
    initial = np.asarray(initial, dtype=np.float64)
    reached = success(spec, observations[1:], initial)
    failed = failure(spec, observations[1:], initial) & ~reached
    return float(_rewards(spec, observations, initial, reached, failed)[0]), bool(reached[0]), bool(failed[0])


def _rewards(
    spec: GoalSpec, observations: np.ndarray, initial: np.ndarray, reached: np.ndarray, failed: np.ndarray
) -> np.ndarray:
    score = progress(spec, observations, initial)
    reward = PROGRESS_SCALE * np.diff(score)
    reward += SUCCESS_REWARD * reached
    reward -= FAILURE_PENALTY * failed
    uninvolved = [ball for ball in range(NUM_BALLS) if ball not in spec.balls]
    if uninvolved:
        moved = np.linalg.norm(np.diff(positions(observations)[:, uninvolved], axis=0), axis=-1).max(axis=-1)
        reward -= np.where(moved > DISTURB_THRESHOLD, moved, 0.0)
    return reward.astype(np.float32)


def first_success(spec: GoalSpec, observations: np.ndarray) -> int | None:
    """Index of the first observation after the initial one that achieves the goal, or ``None``."""
    observations = np.asarray(observations)
    hits = np.flatnonzero(success(spec, observations[1:], observations[0]))
    return int(hits[0]) + 1 if hits.size else None


def _relation_holds(relation: Relation, balls: np.ndarray) -> np.ndarray:
    offset = balls[..., relation.src, :] - balls[..., relation.dst, :]
    distance = np.linalg.norm(offset, axis=-1)
    along = offset @ np.asarray(UNIT[relation.direction])
    return (distance < SUCCESS_DISTANCE) & (along >= SECTOR_COS * distance)


def _step_displacement(spec: Step, balls: np.ndarray, initial: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    moved = balls[..., spec.ball, :] - initial[spec.ball]
    unit = np.asarray(UNIT[spec.direction])
    along = moved @ unit
    across = moved @ np.array([-unit[1], unit[0]])
    return along, across


def _max_progress(spec: GoalSpec) -> float:
    if isinstance(spec, LineUp):
        return float(len(spec.order) - 1)
    if isinstance(spec, Gather):
        return float(NUM_BALLS - 1)
    raise TypeError(f"no count-based progress for {type(spec).__name__}")
