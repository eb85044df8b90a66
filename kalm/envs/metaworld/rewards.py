"""The state-only reward of the Meta-World tasks: a dense potential's difference, plus 10 on success.

Reference §4.4: the authors label every transition with ``R(s_t) - R(s_{t-1})`` of the task's dense
Meta-World reward and 10 on a successful step. Meta-World 3.1.1's dense rewards also read the action (grip
effort), the finger pads and contact forces, none of which a 91-d state holds. So each task's potential
``phi`` keeps the structure of its v2 reward (``compute_reward``: the same tolerance terms, bounds, margins
and weights, margins taken from the rollout's first state) and drops the terms the state lacks; it lies in
[0, 10] and is 10 where the task is achieved, as Meta-World's reward is. The reward of a transition is then
``phi(s_t) - phi(s_{t-1}) + 10 * success(s_t)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from metaworld.utils.reward_utils import SIGMOID_TYPE, tolerance

from kalm.envs.metaworld import entities as E
from kalm.envs.metaworld import judges

SUCCESS_REWARD = 10.0
Potential = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(N, 91)`` observations and the rollout's first one -> ``(N,)`` potentials."""


def hamacher(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The Hamacher t-norm ``ab / (a + b - ab)`` (0 where both are 0), vectorised."""
    denominator = a + b - a * b
    return np.where(denominator > 0, a * b / np.where(denominator > 0, denominator, 1.0), 0.0)


def _near(
    obs: np.ndarray,
    init: np.ndarray,
    point: np.ndarray,
    point0: np.ndarray,
    radius: float,
    sigmoid: SIGMOID_TYPE = "long_tail",
    margin_offset: float = 0.0,
) -> np.ndarray:
    """Tolerance of the finger centre's distance to ``point``, with the margin of the first state."""
    margin = abs(float(judges.distance(E.tcp(init), point0)) - margin_offset)
    return tolerance(judges.distance(E.tcp(obs), point), bounds=(0.0, radius), margin=margin, sigmoid=sigmoid)


def _in_place(
    point: np.ndarray,
    point0: np.ndarray,
    goal: np.ndarray,
    goal0: np.ndarray,
    radius: float,
    scale: np.ndarray | float = 1.0,
    sigmoid: SIGMOID_TYPE = "long_tail",
    margin_offset: float = 0.0,
) -> np.ndarray:
    """Tolerance of ``point``'s (scaled) distance to ``goal``, with the margin of the first state."""
    margin = abs(float(judges.distance(point0 * scale, goal0 * scale)) - margin_offset)
    return tolerance(
        judges.distance(point * scale, goal * scale), bounds=(0.0, radius), margin=margin, sigmoid=sigmoid
    )


def _reach(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    margin = float(judges.distance(E.gripper(init), E.target(init)))
    return 10.0 * tolerance(
        judges.distance(E.tcp(obs), E.target(obs)), bounds=(0.0, 0.05), margin=margin, sigmoid="long_tail"
    )


def _push(
    entity: str,
    radius: float,
    reach_radius: float = 0.02,
    scale: np.ndarray | float = 1.0,
    weights: tuple[float, float] = (2.0, 8.0),
) -> Potential:
    def potential(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
        point, point0 = E.position(obs, entity), E.position(init, entity)
        reach = _near(obs, init, point, point0, reach_radius)
        in_place = _in_place(point, point0, E.target(obs), E.target(init), radius, scale)
        return weights[0] * reach + weights[1] * in_place

    return potential


def _detour(
    point: np.ndarray, point0: np.ndarray, midpoint: np.ndarray, midpoint0: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """The wall tasks' first in-place term (around the wall via a midpoint), 1 once past it (y > 0.75)."""
    near_midpoint = _in_place(point, point0, midpoint, midpoint0, 0.05, scale)
    return np.where(point[..., 1] > 0.75, 1.0, near_midpoint)


def _push_wall(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    point, point0 = E.position(obs, "target_object"), E.position(init, "target_object")
    midpoint = np.stack(np.broadcast_arrays(-0.05, 0.77, point[..., 2]), axis=-1)
    midpoint0 = np.array([-0.05, 0.77, point0[2]])
    detour = _detour(point, point0, midpoint, midpoint0, np.array([3.0, 1.0, 1.0]))
    return _push("target_object", 0.05, weights=(2.0, 4.0))(obs, init) + 4.0 * detour


def _held(obs: np.ndarray, init: np.ndarray, entity: str) -> np.ndarray:
    point = E.position(obs, entity)
    lifted = point[..., 2] - E.position(init, entity)[2] > 0.01
    return ((judges.distance(E.tcp(obs), point) < 0.02) & lifted).astype(float)


def _pick_place(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    return _push("target_object", 0.05, weights=(2.0, 7.0))(obs, init) + _held(obs, init, "target_object")


def _pick_place_wall(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    point, point0 = E.position(obs, "target_object"), E.position(init, "target_object")
    target = E.target(obs)
    midpoint = np.stack(np.broadcast_arrays(target[..., 0], 0.77, 0.25), axis=-1)
    midpoint0 = np.array([E.target(init)[0], 0.77, 0.25])
    detour = _detour(point, point0, midpoint, midpoint0, np.array([1.0, 1.0, 3.0]))
    return (
        _push("target_object", 0.05, weights=(2.0, 4.0))(obs, init)
        + _held(obs, init, "target_object")
        + 3.0 * detour
    )


def _press(
    entity: str,
    axis: int,
    target_of: Callable[[np.ndarray], np.ndarray],
    fixed_margin: float | None = None,
    near_radius: float = 0.05,
    scale: np.ndarray | float = 1.0,
) -> Potential:
    """Buttons and locks: ``2 * near + 8 * pressed`` along ``axis`` towards ``target_of(obs)``."""

    def potential(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
        point, point0 = E.position(obs, entity), E.position(init, entity)
        near_margin = float(judges.distance(E.tcp(init) * scale, point0 * scale))
        near = tolerance(
            judges.distance(E.tcp(obs) * scale, point * scale),
            bounds=(0.0, near_radius),
            margin=near_margin,
            sigmoid="long_tail",
        )
        margin = fixed_margin
        if margin is None:
            margin = abs(float(target_of(init[None])[0] - point0[axis]))
        pressed = tolerance(
            np.abs(target_of(obs) - point[..., axis]), bounds=(0.0, 0.005), margin=margin, sigmoid="long_tail"
        )
        return 2.0 * near + 8.0 * pressed

    return potential


def _target_axis(axis: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda obs: E.target(obs)[..., axis]


def _coffee_button_target(obs: np.ndarray) -> np.ndarray:
    return E.position(obs, "coffee_machine")[..., 1] + judges.COFFEE_BUTTON_FROM_MACHINE_Y


_SHOULDER = np.array([0.0, 0.055, 0.07])
_SHOULDER_SCALE = np.array([0.25, 1.0, 0.5])


def _ready_to_unlock(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    """door-unlock's ``ready_to_push``: the gripper's shoulder behind the lock."""
    shoulder = (E.gripper(obs) + _SHOULDER - E.position(obs, "lock")) * _SHOULDER_SCALE
    shoulder0 = (E.tcp(init) + _SHOULDER - E.position(init, "lock")) * _SHOULDER_SCALE
    return tolerance(
        np.linalg.norm(shoulder, axis=-1),
        bounds=(0.0, 0.02),
        margin=float(np.linalg.norm(shoulder0)),
        sigmoid="long_tail",
    )


def _door_unlock(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    pushed = tolerance(
        np.abs(E.target(obs)[..., 0] - E.position(obs, "lock")[..., 0]),
        bounds=(0.0, 0.005),
        margin=0.1,
        sigmoid="long_tail",
    )
    return 2.0 * _ready_to_unlock(obs, init) + 8.0 * pushed


def _door_open(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    """door-open's ``_reward_pos``: the hand ready at the handle (above a funnel), then the door's angle."""
    hand, door = E.gripper(obs), E.position(obs, "handle") + np.array([-0.05, 0.0, 0.0])
    radius = np.linalg.norm(hand[..., :2] - door[..., :2], axis=-1)
    floor = np.where(radius <= 0.12, 0.0, 0.04 * np.log(np.maximum(radius - 0.12, 1e-12)) + 0.4)
    below = np.maximum(floor - hand[..., 2], 0.0)
    above_floor = np.where(hand[..., 2] >= floor, 1.0, _long_tail(below, 0.01, floor / 2.0))
    in_place = tolerance(
        judges.distance(hand, door + np.array([0.05, 0.03, -0.01])),
        bounds=(0.0, 0.06),
        margin=0.5,
        sigmoid="long_tail",
    )
    theta = judges.door_angle(obs)
    fully_open = tolerance(
        np.pi / 2.0 + np.pi / 6 + theta, bounds=(0.0, 0.5), margin=np.pi / 3.0, sigmoid="long_tail"
    )
    opened = 0.2 * (theta < -np.pi / 90.0) + 0.8 * fully_open
    return 2.0 * hamacher(above_floor, in_place) + 8.0 * opened


def _long_tail(x: np.ndarray, upper: float, margin: np.ndarray) -> np.ndarray:
    """``tolerance(x, (0, upper), margin, "long_tail")`` for ``x >= 0`` with one margin per row."""
    safe = np.where(margin > 0, margin, 1.0)
    outside = np.where(margin > 0, 1.0 / ((3.0 * (x - upper) / safe) ** 2 + 1.0), 0.0)  # 3 = sqrt(1/0.1 - 1)
    return np.where(x <= upper, 1.0, outside)


def _door_close(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    handle, handle0, target = E.position(obs, "handle"), E.position(init, "handle"), E.target(obs)
    hand_margin = float(judges.distance(E.gripper(init), handle0)) + 0.1
    hand_in_place = tolerance(
        judges.distance(E.tcp(obs), target), bounds=(0.0, 0.0125), margin=hand_margin, sigmoid="gaussian"
    )
    in_place = _in_place(handle, handle0, target, E.target(init), 0.05, sigmoid="gaussian")
    return 3.0 * hand_in_place + 6.0 * in_place


def _window(sigmoid: SIGMOID_TYPE) -> Potential:
    def potential(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
        point, point0 = E.position(obs, "window"), E.position(init, "window")
        reach = _near(obs, init, point, point0, 0.02, sigmoid, margin_offset=0.02)
        margin = abs(abs(float(point0[0] - E.target(init)[0])) - 0.05)
        in_place = tolerance(
            np.abs(point[..., 0] - E.target(obs)[..., 0]),
            bounds=(0.0, 0.05),
            margin=margin,
            sigmoid="long_tail",
        )
        return 10.0 * hamacher(reach, in_place)

    return potential


def _faucet(offset: np.ndarray) -> Potential:
    def potential(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
        point, point0 = E.position(obs, "faucet") + offset, E.position(init, "faucet") + offset
        reach = _near(obs, init, point, point0, 0.01, "gaussian", margin_offset=0.01)
        in_place = _in_place(point, point0, E.target(obs), E.target(init), 0.07, margin_offset=0.07)
        return 4.0 * reach + 6.0 * in_place

    return potential


def _hammer(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    hammer, hammer0 = E.position(obs, "hammer"), E.position(init, "hammer")
    head = hammer + np.array([0.16, 0.06, 0.0])
    tilt = np.linalg.norm(E.quaternion(obs, "hammer") - [1.0, 0.0, 0.0, 0.0], axis=-1)
    upright = np.maximum(1.0 - tilt / 0.4, 0.0)
    on_nail = tolerance(
        judges.distance(E.target(obs), head), bounds=(0.0, 0.02), margin=0.2, sigmoid="long_tail"
    )
    in_place = 0.1 * (head[..., 2] > 0.02) + 0.9 * on_nail
    driven = np.clip((E.position(obs, "nail")[..., 1] - judges.NAIL_REST_Y) / judges.NAIL_DEPTH, 0.0, 1.0)
    return (2.0 * _near(obs, init, hammer, hammer0, 0.02) + 6.0 * in_place) * upright + 2.0 * driven


def _make_coffee(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    button = POTENTIALS["coffee-button"](obs, init)
    return 0.5 * POTENTIALS["coffee-push"](obs, init) + 0.5 * judges.mug_in_place(obs) * button


def _locked_door_open(obs: np.ndarray, init: np.ndarray) -> np.ndarray:
    offset = judges.door_frame_offset(obs)[..., 0] - judges.UNLOCK_X_FROM_HANDLE
    pushed = tolerance(np.abs(offset), bounds=(0.0, 0.005), margin=0.1, sigmoid="long_tail")
    unlock = 2.0 * _ready_to_unlock(obs, init) + 8.0 * pushed
    return 0.5 * unlock + 0.5 * judges.lock_open(obs) * _door_open(obs, init)


POTENTIALS: dict[str, Potential] = {
    "reach": _reach,
    "push": _push("target_object", 0.05),
    "pick-place": _pick_place,
    "button-press": _press("button", 1, _target_axis(1)),
    "door-unlock": _door_unlock,
    "door-open": _door_open,
    "window-open": _window("long_tail"),
    "faucet-open": _faucet(judges.FAUCET_OPEN_OFFSET),
    "coffee-push": _push("target_object", 0.05, reach_radius=0.04, scale=np.array([2.0, 2.0, 1.0])),
    "coffee-button": _press("coffee_button", 1, _coffee_button_target, fixed_margin=0.03),
    "reach-wall": _reach,
    "push-wall": _push_wall,
    "pick-place-wall": _pick_place_wall,
    "button-press-wall": _press("button", 1, _target_axis(1), near_radius=0.01),
    "door-lock": _press(
        "lock", 2, _target_axis(2), fixed_margin=0.1, near_radius=0.01, scale=np.array([0.25, 1.0, 0.5])
    ),
    "door-close": _door_close,
    "window-close": _window("gaussian"),
    "faucet-close": _faucet(np.zeros(3)),
    "hammer": _hammer,
    "soccer": _push("soccer_ball", 0.05, scale=np.array([3.0, 1.0, 1.0]), weights=(3.0, 7.0)),
    "make-coffee": _make_coffee,
    "locked-door-open": _locked_door_open,
}
"""The dense potential of every task (before the success override)."""


def potential(
    task: str, observations: np.ndarray, initial: np.ndarray, reached: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``phi`` of ``(N, 91)`` observations and their success: ``phi`` is 10 where the task is achieved.

    ``reached`` says where it is achieved; by default the state-only judge decides (the environment passes
    Meta-World's own success for real rollouts).
    """
    observations = np.asarray(observations, dtype=np.float64)
    initial = np.asarray(initial, dtype=np.float64)
    reached = judges.success(task, observations) if reached is None else np.asarray(reached, dtype=bool)
    phi = np.clip(POTENTIALS[task](observations, initial), 0.0, SUCCESS_REWARD)
    return np.where(reached, SUCCESS_REWARD, phi), reached


def rewards(task: str, observations: np.ndarray, initial: np.ndarray | None = None) -> np.ndarray:
    """The ``T`` rewards of ``T + 1`` consecutive observations: potential difference, +10 on success.

    ``initial`` is the rollout's first observation (``observations[0]`` by default; pass it when scoring a
    later slice), from which the potentials take their margins.
    """
    observations = np.asarray(observations, dtype=np.float64)
    initial = observations[0] if initial is None else initial
    phi, reached = potential(task, observations, initial)
    return transition_rewards(phi[:-1], phi[1:], reached[1:])


def transition_rewards(
    phi_before: np.ndarray, phi_after: np.ndarray, success_after: np.ndarray
) -> np.ndarray:
    """``phi_after - phi_before + 10 * success_after``, as float32."""
    bonus = SUCCESS_REWARD * np.asarray(success_after)
    return (np.asarray(phi_after) - phi_before + bonus).astype(np.float32)
