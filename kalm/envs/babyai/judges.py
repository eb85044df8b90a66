"""Success and failure judges and the reward of BabyAI missions, computed from observations alone.

Each single mission is judged on one state against the episode's first (so imaginary rollouts are labelled
without the simulator, and a rollout's end can be found from its first and latest state), the way BabyAI's
verifier judges the action that leads there:

- go to X: the agent faces X (the cell in front of it holds X, on the floor or a door);
- pick up X: the agent carries X;
- open X: door X is open (every door starts closed);
- put A next to B: A lies on the floor, moved from its start, beside B (one cell across, not diagonal).

Failure (BabyAI's "strict" missions, stricter than its default, as the evaluation protocol prefers): a pick-up
or put-next mission fails once the agent carries any other object, an open mission once another door is open.
A go-to mission never fails.

A sequence (``then``/``after``) is judged on its order: it ends when its second mission's state is reached,
with success if its first mission's state was reached at that step or before, and as a failure otherwise
(BabyAI's strict ``BeforeInstr``/``AfterInstr``). Its clauses' own failures do not end it.

Reward: BabyAI's, ``1 - 0.9 * t / horizon`` at the step ``t`` that succeeds, 0 otherwise.
"""

from __future__ import annotations

import numpy as np

from kalm.envs.babyai.missions import (
    COLOURS,
    TYPES,
    GoTo,
    Mission,
    Obj,
    Open,
    PickUp,
    PutNext,
    Sequence,
    Spec,
)
from kalm.envs.babyai.scene import AGENT_DIM, DIRECTIONS, DOOR_SLOTS, NUM_DOORS, NUM_OBJECTS, SLOT

MISSION_HORIZON = 32
"""Steps of a single mission (BabyAI gives one navigation 49 in a 7x7 room; the bot needs at most ~26
here)."""
SEQUENCE_HORIZON = 64


def horizon(spec: Spec) -> int:
    return SEQUENCE_HORIZON if isinstance(spec, Sequence) else MISSION_HORIZON


def _slots(observations: np.ndarray) -> np.ndarray:
    """``(N, 35)`` observations as ``(N, 6, 5)`` slots (type, colour, x, y, state), rounded."""
    values = np.rint(np.asarray(observations, dtype=np.float64))
    return values[..., AGENT_DIM:].reshape(*values.shape[:-1], NUM_OBJECTS + NUM_DOORS, SLOT)


def _matches(slots: np.ndarray, obj: Obj) -> np.ndarray:
    return (slots[..., 0] == TYPES.index(obj.type) + 1) & (slots[..., 1] == COLOURS.index(obj.colour) + 1)


def _front(observations: np.ndarray) -> np.ndarray:
    values = np.rint(np.asarray(observations, dtype=np.float64))
    direction = np.mod(values[..., 2], 4).astype(int)
    return values[..., :2] + DIRECTIONS[direction]


def _is_door(slots: np.ndarray) -> np.ndarray:
    doors = np.zeros(slots.shape[-2], dtype=bool)
    doors[list(DOOR_SLOTS)] = True
    return np.broadcast_to(doors, slots.shape[:-1])


def holds(mission: Mission, observations: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Whether each of ``observations`` (``(N, 35)``) is a state that achieves ``mission``; ``(N,)`` bool."""
    slots = _slots(observations)
    if isinstance(mission, GoTo):
        match = _matches(slots, mission.obj) & ((slots[..., 4] == 0) | _is_door(slots))
        facing = np.all(slots[..., 2:4] == _front(observations)[..., None, :], axis=-1)
        return np.any(match & facing, axis=-1)
    if isinstance(mission, PickUp):
        return np.any(_matches(slots, mission.obj) & (slots[..., 4] == 1) & ~_is_door(slots), axis=-1)
    if isinstance(mission, Open):
        return np.any(_matches(slots, mission.door) & (slots[..., 4] == 1) & _is_door(slots), axis=-1)
    move, fixed = _matches(slots, mission.move), _matches(slots, mission.fixed)
    start = _slots(initial)
    down = (slots[..., 4] == 0) & ~_is_door(slots)
    moved = np.any(slots[..., 2:4] != start[..., 2:4], axis=-1)
    position = slots[..., 2:4]
    gap = np.abs(position[..., :, None, :] - position[..., None, :, :]).sum(axis=-1)  # (N, 6, 6)
    pairs = (move & down & moved)[..., :, None] & (fixed & down)[..., None, :] & (gap == 1)
    return np.any(pairs, axis=(-2, -1))


def fails(mission: Mission, observations: np.ndarray) -> np.ndarray:
    """Whether each of ``observations`` fails a single mission for good (see the module docstring)."""
    slots = _slots(observations)
    if isinstance(mission, (PickUp, PutNext)):
        wanted = mission.obj if isinstance(mission, PickUp) else mission.move
        return np.any((slots[..., 4] == 1) & ~_is_door(slots) & ~_matches(slots, wanted), axis=-1)
    if isinstance(mission, Open):
        return np.any((slots[..., 4] == 1) & _is_door(slots) & ~_matches(slots, mission.door), axis=-1)
    return np.zeros(slots.shape[:-2], dtype=bool)


def success(spec: Spec, observations: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """For the states after the first (``observations``, ``(N, 35)``, in order), whether each achieves
    ``spec``."""
    if not isinstance(spec, Sequence):
        return holds(spec, observations, initial)
    first, second = spec.order
    return holds(second, observations, initial) & _reached(first, observations, initial)


def failure(spec: Spec, observations: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """For the states after the first, whether each fails ``spec`` for good."""
    if not isinstance(spec, Sequence):
        return fails(spec, observations)
    first, second = spec.order
    return holds(second, observations, initial) & ~_reached(first, observations, initial)


def _reached(mission: Mission, observations: np.ndarray, initial: np.ndarray) -> np.ndarray:
    return np.logical_or.accumulate(holds(mission, observations, initial), axis=0)


def rewards(spec: Spec, observations: np.ndarray) -> np.ndarray:
    """The ``T`` rewards of ``T + 1`` observations: BabyAI's success reward at the first succeeding step."""
    observations = np.asarray(observations, dtype=np.float64)
    hits = success(spec, observations[1:], observations[0])
    first = np.zeros_like(hits)
    if hits.any():
        first[int(np.argmax(hits))] = True
    steps = np.arange(1, len(hits) + 1)
    return np.where(first, 1.0 - 0.9 * steps / horizon(spec), 0.0).astype(np.float32)
