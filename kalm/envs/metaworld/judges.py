"""Success judges of the Meta-World tasks, computed from 91-d observations alone.

Each judge restates the task's ``evaluate_state`` success test of Meta-World 3.1.1 on what the 91-d state
holds (reference §4.3: imaginary rollouts are judged this way). Exact restatements, up to float32 rounding:
push, pick-place, button-press, door-unlock, door-open, window-open, faucet-open, coffee-push, coffee-button,
their easy counterparts, hammer, soccer and the two composed tasks. Approximate: reach and reach-wall, whose
test uses the finger centre, which the state lacks; the judge uses the hand position plus
``entities.TCP_OFFSET``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from kalm.envs.metaworld import entities as E

Judge = Callable[[np.ndarray], np.ndarray]
"""``(N, 91)`` observations -> ``(N,)`` bools."""

FAUCET_OPEN_OFFSET = np.array([-0.04, 0.0, 0.03])
"""faucet-open measures the handle site shifted by this much."""
NAIL_REST_Y = 0.64
"""y of the nail link with its slide joint at 0 (the nail box is fixed at y 0.85, the nail 0.21 in front)."""
NAIL_DEPTH = 0.09
"""hammer succeeds once the nail's slide joint exceeds this."""
COFFEE_BUTTON_FROM_MACHINE_Y = -0.19
"""y of the pressed-in coffee button target relative to the machine (coffee-button: -0.22 + 0.03)."""
UNLOCK_X_FROM_HANDLE = -0.0907
"""In the door link's frame, x of door-unlock's target relative to the door handle (measured on the scene)."""
HANDLE_CLOSED_YAW = np.pi / 2
"""Yaw of the door handle's quaternion while the door is shut (the handle mesh's frame is turned 90 deg)."""


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance over the last axis."""
    return np.linalg.norm(a - b, axis=-1)


def mug_in_place(obs: np.ndarray) -> np.ndarray:
    """coffee-push's test: the mug within 0.07 of its goal under the spout."""
    return distance(E.position(obs, "target_object"), E.target(obs)) <= 0.07


def coffee_button_pressed(obs: np.ndarray) -> np.ndarray:
    """coffee-button's test, with the button's target recovered from the machine's position."""
    target_y = E.position(obs, "coffee_machine")[..., 1] + COFFEE_BUTTON_FROM_MACHINE_Y
    return np.abs(E.position(obs, "coffee_button")[..., 1] - target_y) <= 0.02


def door_frame_offset(obs: np.ndarray) -> np.ndarray:
    """The lock relative to the handle, in the door link's frame (its quaternion fills the lock slot's)."""
    rotation = quaternion_wxyz_to_matrix(E.quaternion(obs, "lock"))
    offset = E.position(obs, "lock") - E.position(obs, "handle")
    return np.einsum("...ji,...j->...i", rotation, offset)


def lock_open(obs: np.ndarray) -> np.ndarray:
    """door-unlock's test in the door's frame, so that it holds while the door swings."""
    return np.abs(door_frame_offset(obs)[..., 0] - UNLOCK_X_FROM_HANDLE) <= 0.02


def door_angle(obs: np.ndarray) -> np.ndarray:
    """The door's opening angle (0 shut, negative open) from the handle's quaternion (x-y-z-w)."""
    x, y, z, w = np.moveaxis(E.quaternion(obs, "handle"), -1, 0)
    yaw = np.arctan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z))
    return np.angle(np.exp(1j * (yaw - HANDLE_CLOSED_YAW)))


def quaternion_wxyz_to_matrix(quaternion: np.ndarray) -> np.ndarray:
    """``(..., 4)`` w-x-y-z quaternions -> ``(..., 3, 3)`` rotation matrices (normalised first)."""
    norm = np.linalg.norm(quaternion, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(quaternion / np.where(norm > 0, norm, 1.0), -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _object_near_target(entity: str, radius: float, offset: np.ndarray | None = None) -> Judge:
    def judge(obs: np.ndarray) -> np.ndarray:
        point = E.position(obs, entity) if offset is None else E.position(obs, entity) + offset
        return distance(point, E.target(obs)) <= radius

    return judge


def _axis_near_target(entity: str, axis: int, radius: float) -> Judge:
    def judge(obs: np.ndarray) -> np.ndarray:
        return np.abs(E.position(obs, entity)[..., axis] - E.target(obs)[..., axis]) <= radius

    return judge


def _reached(obs: np.ndarray) -> np.ndarray:
    return distance(E.tcp(obs), E.target(obs)) <= 0.05


def _nail_driven(obs: np.ndarray) -> np.ndarray:
    return E.position(obs, "nail")[..., 1] - NAIL_REST_Y > NAIL_DEPTH


def _coffee_made(obs: np.ndarray) -> np.ndarray:
    return mug_in_place(obs) & coffee_button_pressed(obs)


def _locked_door_opened(obs: np.ndarray) -> np.ndarray:
    return lock_open(obs) & _axis_near_target("handle", 0, 0.08)(obs)


JUDGES: dict[str, Judge] = {
    "reach": _reached,
    "push": _object_near_target("target_object", 0.05),
    "pick-place": _object_near_target("target_object", 0.07),
    "button-press": _axis_near_target("button", 1, 0.02),
    "door-unlock": _axis_near_target("lock", 0, 0.02),
    "door-open": _axis_near_target("handle", 0, 0.08),
    "window-open": _axis_near_target("window", 0, 0.05),
    "faucet-open": _object_near_target("faucet", 0.07, FAUCET_OPEN_OFFSET),
    "coffee-push": mug_in_place,
    "coffee-button": _axis_near_target("coffee_button", 1, 0.02),
    "reach-wall": _reached,
    "push-wall": _object_near_target("target_object", 0.07),
    "pick-place-wall": _object_near_target("target_object", 0.07),
    "button-press-wall": _axis_near_target("button", 1, 0.03),
    "door-lock": _axis_near_target("lock", 2, 0.02),
    "door-close": _object_near_target("handle", 0.08),
    "window-close": _axis_near_target("window", 0, 0.05),
    "faucet-close": _object_near_target("faucet", 0.07),
    "hammer": _nail_driven,
    "soccer": _object_near_target("soccer_ball", 0.07),
    "make-coffee": _coffee_made,
    "locked-door-open": _locked_door_opened,
}
"""The success judge of every task."""


def success(task: str, observations: np.ndarray) -> np.ndarray:
    """Whether each of ``(N, 91)`` observations achieves ``task``; ``(N,)`` bool."""
    return JUDGES[task](np.asarray(observations, dtype=np.float64))
