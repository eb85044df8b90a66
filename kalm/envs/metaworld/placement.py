"""Placing a 91-d state in the simulator, so that any state (an imagined one too) can be rendered.

The 91-d observation does not hold the simulator's joint positions, only what they produce: the hand's
position, the gripper opening, the entities' poses. ``place`` finds joint positions (arm, fingers, objects'
free joints, hinges and slides) and the positions of the bodies Meta-World moves at reset (a door, a faucet,
the coffee machine) whose observation matches the state, by least squares on MuJoCo's forward kinematics
(Levenberg-Marquardt, started from the scene's current configuration). Hinges and slides are tried again
from the middle and the ends of their ranges when the first fit stays off: a door swung open can otherwise
be matched by moving the whole door instead of turning it. Physics does not run: contacts are not resolved.
"""

from __future__ import annotations

import mujoco
import numpy as np
from scipy.optimize import least_squares

from kalm.envs.metaworld import entities as E
from kalm.envs.metaworld.scene import TaskScene

TOLERANCE = 1e-3
"""Largest acceptable difference between a placed scene's observation and the state (metres, unit
quaternion)."""
FINGERS = ("r_close", "l_close")
_ANCHOR = 1e-3
"""Weight of staying near the starting configuration (the arm has more joints than the hand has
coordinates)."""


def place(scene: TaskScene, observation: np.ndarray) -> float:
    """Pose ``scene`` so that it shows ``observation``; returns the largest remaining difference.

    Only the task's own entities, the hand, the opening and the target location are matched (a distractor
    slot is not simulated). The target location is set directly.
    """
    env, model, data = scene.env, scene.env.model, scene.env.data
    observation = np.asarray(observation, dtype=np.float64)
    placed = _placed_bodies(scene)
    env._target_pos = observation[E.TARGET].copy()
    for site, position in env._target_site_config:
        env._set_pos_site(site, position)
    dims = _matched_dims(scene)
    _reach(scene, observation[E.GRIPPER])
    start = np.concatenate([data.qpos, model.body_pos[placed].ravel()])
    for name in FINGERS:  # half closed: a fully open gripper's opening is clipped at 1 (no gradient)
        joint = model.joint(name)
        start[joint.qposadr[0]] = float(np.mean(model.jnt_range[joint.id]))

    def configure(values: np.ndarray) -> np.ndarray:
        data.qpos[:] = values[: model.nq]
        model.body_pos[placed] = values[model.nq :].reshape(-1, 3)
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        shown = scene.observe(env._get_obs()).astype(np.float64)
        for entity in E.filled(observation):  # q and -q are the same orientation
            index = E.quaternion_index(entity)
            if np.dot(shown[index], observation[index]) < 0:
                shown[index] = -shown[index]
        return shown

    def residuals(values: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        return np.concatenate([configure(values)[dims] - observation[dims], _ANCHOR * (values - anchor)])

    best, best_error = start, np.inf
    for guess in _starts(model, start):
        fitted = least_squares(residuals, guess, args=(guess,), method="lm", diff_step=1e-4).x
        error = float(np.abs(configure(fitted)[dims] - observation[dims]).max())
        if error < best_error:
            best, best_error = fitted, error
        if best_error <= TOLERANCE:
            break
    configure(best)
    _normalise_free_joints(model, data)
    mujoco.mj_kinematics(model, data)
    return best_error


def _reach(scene: TaskScene, hand: np.ndarray, steps: int = 50) -> None:
    """Pose the arm as Meta-World's hand reset does: from its initial joints, the mocap held at ``hand``.

    The 91-d state says where the hand is, not how the arm's joints reach it (in the simulator that depends on
    the path the hand took); this reaches it the way the simulated arm does from its initial joints, the same
    for every state. Every other joint is put back afterwards.
    """
    env, model, data = scene.env, scene.env.model, scene.env.data
    arm = np.concatenate(
        [
            np.arange(model.jnt_qposadr[j], model.jnt_qposadr[j] + 1)
            for j in range(model.njnt)
            if model.joint(j).name.startswith("right_j")
        ]
    )
    others = np.setdiff1d(np.arange(model.nq), arm)
    kept = data.qpos[others].copy()
    qpos, qvel = data.qpos.copy(), np.zeros(model.nv)
    qpos[arm] = env.init_qpos[arm]
    env.set_state(qpos, qvel)
    mocap = model.body_mocapid[data.body("mocap").id]
    for _ in range(steps):
        data.mocap_pos[mocap] = hand
        data.mocap_quat[mocap] = np.array([1.0, 0.0, 1.0, 0.0])
        env.do_simulation([-1.0, 1.0], env.frame_skip)
    qpos = data.qpos.copy()
    qpos[others] = kept
    env.set_state(qpos, np.zeros(model.nv))


def _matched_dims(scene: TaskScene) -> np.ndarray:
    dims = [*range(E.OPENING + 1)]
    for entity in scene.task.entities:
        index = E.slot_index(entity)
        dims.extend(range(index.start, index.stop))
    return np.asarray(dims)


def _placed_bodies(scene: TaskScene) -> np.ndarray:
    """The bodies whose position Meta-World draws at reset (found once per scene by two seeded resets)."""
    if not hasattr(scene, "placed_bodies"):
        model = scene.env.model
        saved = model.body_pos.copy()
        scene.reset(1)
        first = model.body_pos.copy()
        scene.reset(2)
        scene.placed_bodies = np.flatnonzero(np.any(model.body_pos != first, axis=1))
        model.body_pos[:] = saved
    return scene.placed_bodies


def _starts(model: mujoco.MjModel, start: np.ndarray) -> list[np.ndarray]:
    """The current configuration, then hinges and slides (fingers aside) at the middle and ends of their
    ranges."""
    fingers = {model.joint(name).id for name in FINGERS}
    joints = [
        j
        for j in range(model.njnt)
        if model.jnt_limited[j]
        and j not in fingers
        and model.jnt_type[j] in (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
        and not model.joint(j).name.startswith("right_j")
    ]
    starts = [start]
    for fraction in (0.5, 0.0, 1.0):
        guess = start.copy()
        for joint in joints:
            low, high = model.jnt_range[joint]
            guess[model.jnt_qposadr[joint]] = low + fraction * (high - low)
        starts.append(guess)
    return starts if joints else starts[:1]


def _normalise_free_joints(model: mujoco.MjModel, data: mujoco.MjData) -> None:
    for joint in np.flatnonzero(model.jnt_type == mujoco.mjtJoint.mjJNT_FREE):
        address = model.jnt_qposadr[joint] + 3
        data.qpos[address : address + 4] /= np.linalg.norm(data.qpos[address : address + 4])
