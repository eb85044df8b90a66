"""The 91-d entity-slot observation of KALM's Meta-World setting (reference §5.2).

```
index   0:3   gripper position (the Sawyer ``hand`` body, as Meta-World reports it)
        3     gripper opening (0 closed .. 1 open, Meta-World's normalised finger distance)
        4:7   target location (the task's goal position, Meta-World's ``_target_pos``)
        7:91  12 entity slots of 7 numbers each: position (x, y, z) then the orientation quaternion
              exactly as Meta-World reports it for that entity
```

Slots, in order: target object (puck, mug, ...), button, lock, handle, window, faucet, wall, coffee machine,
coffee button, hammer, nail, soccer ball. A task fills the slots of the entities its scene contains and
leaves the others at zero; a test-time distractor may fill one more (see ``distractors.py``).
"""

from __future__ import annotations

import numpy as np

ENTITIES = (
    "target_object",
    "button",
    "lock",
    "handle",
    "window",
    "faucet",
    "wall",
    "coffee_machine",
    "coffee_button",
    "hammer",
    "nail",
    "soccer_ball",
)
"""Entity kinds, in slot order."""

SLOT_SIZE = 7
GRIPPER = slice(0, 3)
OPENING = 3
TARGET = slice(4, 7)
FIRST_SLOT = 7
OBS_DIM = FIRST_SLOT + SLOT_SIZE * len(ENTITIES)
assert OBS_DIM == 91

TCP_OFFSET = np.array([-0.0006, 0.0027, -0.0449])
"""The gripper's tool centre point (between the finger tips) relative to the hand body.

Meta-World judges reaching with the finger centre, which the 91-d state does not contain. The mocap weld holds
the hand's orientation, so the offset is nearly constant: (0, 0, -0.045) at rest, swaying by a few millimetres
while the arm moves. This is its mean over the scripted experts' reach and reach-wall steps (std 0.5, 1.3,
0.1 mm), measured on Meta-World 3.1.1.
"""


def slot_start(entity: str) -> int:
    """Index of the first number of ``entity``'s slot in the 91-d vector."""
    return FIRST_SLOT + SLOT_SIZE * ENTITIES.index(entity)


def position_index(entity: str) -> slice:
    """The 91-d indices of ``entity``'s position."""
    start = slot_start(entity)
    return slice(start, start + 3)


def quaternion_index(entity: str) -> slice:
    """The 91-d indices of ``entity``'s orientation quaternion."""
    start = slot_start(entity)
    return slice(start + 3, start + SLOT_SIZE)


def slot_index(entity: str) -> slice:
    """The 91-d indices of ``entity``'s whole slot (position and quaternion)."""
    start = slot_start(entity)
    return slice(start, start + SLOT_SIZE)


def position(observations: np.ndarray, entity: str) -> np.ndarray:
    """``(..., 3)`` positions of ``entity`` in ``(..., 91)`` observations (float64)."""
    return np.asarray(observations, dtype=np.float64)[..., position_index(entity)]


def quaternion(observations: np.ndarray, entity: str) -> np.ndarray:
    """``(..., 4)`` orientation quaternions of ``entity`` in ``(..., 91)`` observations (float64)."""
    return np.asarray(observations, dtype=np.float64)[..., quaternion_index(entity)]


def gripper(observations: np.ndarray) -> np.ndarray:
    """``(..., 3)`` hand positions."""
    return np.asarray(observations, dtype=np.float64)[..., GRIPPER]


def tcp(observations: np.ndarray) -> np.ndarray:
    """``(..., 3)`` estimated finger-centre positions (hand position + ``TCP_OFFSET``)."""
    return gripper(observations) + TCP_OFFSET


def opening(observations: np.ndarray) -> np.ndarray:
    """``(...)`` gripper openings."""
    return np.asarray(observations, dtype=np.float64)[..., OPENING]


def target(observations: np.ndarray) -> np.ndarray:
    """``(..., 3)`` target locations."""
    return np.asarray(observations, dtype=np.float64)[..., TARGET]


def filled(observation: np.ndarray) -> tuple[str, ...]:
    """The entities whose slot holds anything other than zeros in one 91-d observation."""
    observation = np.asarray(observation)
    return tuple(entity for entity in ENTITIES if np.any(observation[slot_index(entity)] != 0))


def plausibility_bounds() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(low, high, max_step_change)`` per dimension of the 91-d state, for ``EnvSuite.implausibility``.

    Positions must lie in Meta-World's reachable box (its hand limits, widened by 0.1; empty slots are
    zeros, which it contains), the opening in [0, 1], quaternions in [-1, 1]. In 1,000 real expert
    episodes the hand and every object moved at most 0.025 per step and the opening 0.075; the limits are
    four times that. The target location never moves within an episode; quaternions may flip sign, so
    their steps are not limited.
    """
    low, high, step = np.empty(OBS_DIM), np.empty(OBS_DIM), np.empty(OBS_DIM)
    position_low, position_high = np.array([-0.625, -0.1, -0.15]), np.array([0.625, 1.125, 0.8])
    positions = [GRIPPER, TARGET] + [position_index(entity) for entity in ENTITIES]
    for index in positions:
        low[index], high[index], step[index] = position_low, position_high, 0.1
    step[TARGET] = 1e-3
    low[OPENING], high[OPENING], step[OPENING] = -0.05, 1.05, 0.3
    for entity in ENTITIES:
        index = quaternion_index(entity)
        low[index], high[index], step[index] = -1.05, 1.05, 2.1
    return low, high, step


def project(states: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """``(..., 91)`` states put back on what the observation guarantees, given the episode's ``(..., 91)``
    first state.

    A slot that is empty at the start (an entity the scene does not hold) stays zeros, an orientation is a
    unit quaternion, the target location never moves within an episode, and the opening is Meta-World's finger
    distance clipped to [0, 1]. A decoder that predicts changes of the state drifts slightly in such
    dimensions (a fully open gripper "opens" past 1, an empty slot creeps away from zero, a quaternion grows);
    these are facts of the observation, not of physics, so they are restored rather than judged. Returns a new
    float array.
    """
    states, initial = np.array(states, dtype=np.float64), np.asarray(initial, dtype=np.float64)
    initial = np.broadcast_to(initial, states.shape)
    for entity in ENTITIES:
        index, rotation = slot_index(entity), quaternion_index(entity)
        empty = np.all(initial[..., index] == 0, axis=-1)
        states[..., index] = np.where(empty[..., None], 0.0, states[..., index])
        norm = np.linalg.norm(states[..., rotation], axis=-1, keepdims=True)
        states[..., rotation] = np.where(norm > 0, states[..., rotation] / np.where(norm > 0, norm, 1.0), 0.0)
    states[..., TARGET] = initial[..., TARGET]
    states[..., OPENING] = np.clip(states[..., OPENING], 0.0, 1.0)
    return states
