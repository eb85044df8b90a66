"""What a real BabyAI observation guarantees, for imagined ones: bounds, projection and BabyAI's rules.

``bounds``: every dimension's range and largest change in one step (types, colours and door cells never
change, cells change by at most one). ``project``: decoded states rounded to integers, with the fields that
never change copied from the rollout's initial state and the fields the encoding repeats (the carried object's
cell, type and colour) made to agree with the carried flag. ``implausibility`` then checks the rules of the
room:

- ``inconsistent_state``: the agent stands on the floor or in an open door, objects on the floor lie on
  distinct floor cells apart from the agent, doors on distinct wall cells, at most one object is carried, it
  is at the agent's cell and the agent's carried type and colour are its (0, 0 with empty hands);
- ``illegal_step``: a step either turns the agent by a quarter, moves it one cell forward, picks up the object
  in front of it, drops the carried object in front of it, toggles the door in front of it, or changes
  nothing; objects do not move otherwise (no teleporting) and a door opens or closes only when the agent faces
  it.
"""

from __future__ import annotations

import numpy as np

from kalm.envs.babyai.scene import (
    AGENT_DIM,
    DIRECTIONS,
    DOOR_SLOTS,
    NUM_DOORS,
    NUM_OBJECTS,
    OBS_DIM,
    ROOM,
    SLOT,
    WALL_CELLS,
)

_SLOTS = NUM_OBJECTS + NUM_DOORS
_STATIC = np.zeros(OBS_DIM, dtype=bool)
"""Dimensions that never change within an episode: slot types and colours, door cells."""
for _slot in range(_SLOTS):
    _base = AGENT_DIM + SLOT * _slot
    _STATIC[_base : _base + 2] = True
    if _slot in DOOR_SLOTS:
        _STATIC[_base + 2 : _base + 4] = True
_WALL_CELLS = frozenset(WALL_CELLS)


def bounds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``observation_low``, ``observation_high`` and ``max_step_change`` of the 35-d observation."""
    low, high, change = np.zeros(OBS_DIM), np.zeros(OBS_DIM), np.zeros(OBS_DIM)
    last = ROOM - 1
    low[:AGENT_DIM], high[:AGENT_DIM], change[:AGENT_DIM] = 0, [last, last, 3, 3, 6], [1, 1, 3, 3, 6]
    for slot in range(_SLOTS):
        base = AGENT_DIM + SLOT * slot
        door = slot in DOOR_SLOTS
        low[base : base + SLOT] = [4 if door else 1, 1, 0, 0, 0]
        high[base : base + SLOT] = [4 if door else 3, 6, last, last, 1]
        change[base : base + SLOT] = [0, 0, 0 if door else 1, 0 if door else 1, 1]
    return low, high, change + 1e-6


def project(states: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """Decoded states ``[B, 35]`` rounded, with the never-changing fields of each rollout's ``initial`` state,
    and what the encoding repeats made to agree: the one carried object (a slot's flag, as predicted) sits at
    the agent's cell and is the agent's carried type and colour (0, 0 when no slot is flagged)."""
    projected = np.rint(np.asarray(states, dtype=np.float64))
    projected[:, _STATIC] = np.rint(np.asarray(initial, dtype=np.float64))[:, _STATIC]
    objects = projected[:, AGENT_DIM : AGENT_DIM + SLOT * NUM_OBJECTS].reshape(-1, NUM_OBJECTS, SLOT)
    flagged = objects[:, :, 4] == 1
    rows = np.flatnonzero(flagged.sum(axis=1) == 1)
    slots = flagged[rows].argmax(axis=1)
    projected[rows, 3:5] = objects[rows, slots, 0:2]
    objects[rows, slots, 2:4] = projected[rows, 0:2]
    projected[:, AGENT_DIM : AGENT_DIM + SLOT * NUM_OBJECTS] = objects.reshape(len(projected), -1)
    projected[flagged.sum(axis=1) == 0, 3:5] = 0
    return projected.astype(np.asarray(states).dtype)


def implausibility(observations: np.ndarray) -> str | None:
    """Why integer-valued observations ``[T + 1, 35]`` break the room's rules (see the module docstring)."""
    observations = np.asarray(observations, dtype=np.float64)
    if np.abs(observations - np.rint(observations)).max() > 1e-3:
        return "non_integer"
    values = np.rint(observations).astype(int)
    if not all(_consistent(state) for state in values):
        return "inconsistent_state"
    if not all(_legal(before, after) for before, after in zip(values[:-1], values[1:], strict=True)):
        return "illegal_step"
    return None


def _parts(state: np.ndarray) -> tuple[tuple[int, int], int, np.ndarray, np.ndarray]:
    slots = state[AGENT_DIM:].reshape(_SLOTS, SLOT)
    return (int(state[0]), int(state[1])), int(state[2]), slots[:NUM_OBJECTS], slots[NUM_OBJECTS:]


def _front(state: np.ndarray) -> tuple[int, int]:
    (x, y), direction, _, _ = _parts(state)
    return x + int(DIRECTIONS[direction % 4][0]), y + int(DIRECTIONS[direction % 4][1])


def _consistent(state: np.ndarray) -> bool:
    agent, _, objects, doors = _parts(state)
    door_cells = [(int(x), int(y)) for x, y in doors[:, 2:4]]
    if len(set(door_cells)) < NUM_DOORS or not set(door_cells) <= _WALL_CELLS:
        return False
    on_floor = [(int(x), int(y)) for x, y, carried in objects[:, 2:5] if not carried]
    if len(set(on_floor)) < len(on_floor) or agent in on_floor:
        return False
    if any(not (0 < x < ROOM - 1 and 0 < y < ROOM - 1) for x, y in on_floor):
        return False
    if not (0 < agent[0] < ROOM - 1 and 0 < agent[1] < ROOM - 1):
        opened = [cell for cell, is_open in zip(door_cells, doors[:, 4], strict=True) if is_open]
        if agent not in opened:
            return False
    carried = objects[objects[:, 4] == 1]
    if len(carried) > 1:
        return False
    if not len(carried):
        return bool(state[3] == 0 and state[4] == 0)
    return bool(tuple(carried[0, 2:4]) == agent and tuple(state[3:5]) == tuple(carried[0, :2]))


def _legal(before: np.ndarray, after: np.ndarray) -> bool:
    agent, direction, objects, doors = _parts(before)
    agent_after, direction_after, objects_after, doors_after = _parts(after)
    turned, moved = direction_after != direction, agent_after != agent
    if moved and (turned or agent_after != _front(before)):
        return False
    if turned and (direction_after - direction) % 4 not in (1, 3):
        return False
    front, changes = _front(before), 0
    for was, now in zip(objects, objects_after, strict=True):
        if was[4] and now[4]:  # carried along
            continue
        if not was[4] and not now[4] and tuple(was[2:4]) != tuple(now[2:4]):
            return False  # a floor object moved by itself
        if was[4] != now[4]:
            landed = tuple(was[2:4]) if not was[4] else tuple(now[2:4])
            if moved or turned or landed != front:
                return False  # picked up or dropped anywhere but in front of the agent
            changes += 1
    for was, now in zip(doors, doors_after, strict=True):
        if was[4] != now[4]:
            if moved or turned or tuple(was[2:4]) != front:
                return False
            changes += 1
    return changes <= 1
