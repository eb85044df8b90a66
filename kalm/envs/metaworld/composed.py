"""The two composed hard tasks, built from Meta-World 3.1.1's own scenes and success conditions.

- ``make-coffee``: coffee-push's scene already holds the mug, the coffee machine and its button. Success is
  coffee-push's success (the mug under the spout) together with coffee-button's (the button pressed in).
- ``locked-door-open``: door-unlock's scene (the safe door with its lock, ``doorlockA``) with the door-pull
  scene's hinge (``doorlockB``: ``doorjoint``, z axis, range -2..0) added to the door through
  ``mujoco.MjSpec``.
  A latch (a joint equality constraint) holds the door shut while the lock is engaged and the door is closed;
  turning the lock open (door-unlock's success condition) releases it. Success is door-unlock's condition
  together with door-open's (the handle within 0.08 m of the open target in x).

Both expose two objects in the 39-d observation (``obs[4:11]``, ``obs[11:18]``), as Meta-World's two-object
tasks do, so the per-task 91-d mapping reads them like any other task.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from gymnasium.spaces import Box
from metaworld.envs.sawyer_coffee_push_v3 import SawyerCoffeePushEnvV3
from metaworld.envs.sawyer_door_unlock_v3 import SawyerDoorUnlockEnvV3
from scipy.spatial.transform import Rotation

COFFEE_BUTTON_TRAVEL = 0.03
"""coffee-button's ``max_dist``: the button's target lies this far in (+y) from its rest position."""
BUTTON_SUCCESS = 0.02
MUG_SUCCESS = 0.07
LOCKED_ANGLE = 1.5708
"""door-unlock resets the lock hinge to this angle (locked); 0 is open."""
UNLOCK_OFFSET = np.array([0.1, -0.04, 0.0])
"""door-unlock's target relative to the lock link at reset."""
UNLOCK_SUCCESS = 0.02
OPEN_OFFSET = np.array([-0.3, -0.45, 0.0])
"""door-open's target relative to the door body."""
OPEN_SUCCESS = 0.08
LATCH_ANGLE = 0.05
"""The latch only engages while the door is closed to within this angle (radians)."""


class MakeCoffeeEnv(SawyerCoffeePushEnvV3):
    """Push the mug under the coffee machine's spout, then press the machine's button."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._button_target = np.zeros(3)

    def _get_pos_objects(self) -> np.ndarray:
        return np.hstack((self.get_body_com("obj"), self._get_site_pos("buttonStart")))

    def _get_quat_objects(self) -> np.ndarray:
        mug = Rotation.from_matrix(self.data.geom("mug").xmat.reshape(3, 3)).as_quat()
        return np.hstack((mug, [1.0, 0.0, 0.0, 0.0]))

    def reset_model(self) -> np.ndarray:
        observation = super().reset_model()
        machine = self.model.body("coffee_machine").pos  # placed by coffee-push after its last mj_forward
        self._button_target = machine + np.array([0.0, -0.22 + COFFEE_BUTTON_TRAVEL, 0.3])
        return observation

    def evaluate_state(self, obs: np.ndarray, action: np.ndarray) -> tuple[float, dict[str, Any]]:
        """coffee-push's reward and info, with ``success`` requiring the button pressed as well."""
        reward, info = super().evaluate_state(obs, action)
        pressed = abs(self._button_target[1] - self._get_site_pos("buttonStart")[1]) <= BUTTON_SUCCESS
        mug_in_place = bool(info["success"])
        info.update(
            mug_in_place=float(mug_in_place),
            button_pressed=float(pressed),
            success=float(mug_in_place and pressed),
        )
        return reward, info


class LockedDoorOpenEnv(SawyerDoorUnlockEnvV3):
    """Turn the lock of a locked door open, then pull the door open."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._door_qpos = self.model.joint("doorjoint").qposadr.item()
        self._door_qvel = self.model.joint("doorjoint").dofadr.item()
        self._lock_qpos = self.model.joint("lock_hinge").qposadr.item()
        self._lock_qvel = self.model.joint("lock_hinge").dofadr.item()
        self._latch = self.model.equality("door_latch").id
        self._unlock_target_local = np.zeros(3)
        doors = self._random_reset_space
        assert doors is not None  # door-unlock's __init__ set it (metaworld declares it optional)
        self.goal_space = Box(doors.low + OPEN_OFFSET, doors.high + OPEN_OFFSET, dtype=np.float64)

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        spec = mujoco.MjSpec.from_file(self.fullpath)
        door = spec.body("door_link")
        door.add_joint(
            spec.find_default("dl_base"),
            name="doorjoint",
            type=mujoco.mjtJoint.mjJNT_HINGE,
            axis=[0.0, 0.0, 1.0],
            range=[-2.0, 0.0],
        )
        spec.body("lock_link").joints[0].name = "lock_hinge"
        handles = [geom for geom in door.geoms if geom.meshname == "door_handle"]
        handles[0].name = "handle"
        spec.add_equality(name="door_latch", type=mujoco.mjtEq.mjEQ_JOINT, name1="doorjoint")
        model = spec.compile()
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    def _get_pos_objects(self) -> np.ndarray:
        return np.hstack((self._get_site_pos("lockStartUnlock"), self.data.geom("handle").xpos))

    def _get_quat_objects(self) -> np.ndarray:
        handle = Rotation.from_matrix(self.data.geom("handle").xmat.reshape(3, 3)).as_quat()
        return np.hstack((self.data.body("door_link").xquat, handle))

    @property
    def _target_site_config(self) -> list[tuple[str, np.ndarray]]:
        return [
            ("goal_unlock", self._door_frame_to_world(self._unlock_target_local)),
            ("goal_lock", np.array([10.0, 10.0, 10.0])),
        ]

    def reset_model(self) -> np.ndarray:
        self._reset_hand()
        door = self._get_state_rand_vec()
        self.model.body("door").pos = door
        qpos, qvel = self.data.qpos.copy(), self.data.qvel.copy()
        qpos[[self._door_qpos, self._lock_qpos]] = 0.0, LOCKED_ANGLE
        qvel[[self._door_qvel, self._lock_qvel]] = 0.0
        self.set_state(qpos, qvel)
        self.obj_init_pos = self.data.body("lock_link").xpos.copy()
        self._unlock_target_local = self._world_to_door_frame(self.obj_init_pos + UNLOCK_OFFSET)
        self._target_pos = door + OPEN_OFFSET
        self.model.site("goal_unlock").pos = self._door_frame_to_world(self._unlock_target_local)
        self.data.eq_active[self._latch] = 1
        return self._get_obs()

    # metaworld's SawyerXYZEnv.step already departs from gymnasium's MujocoEnv.step annotation (reward
    # SupportsFloat)
    def step(  # type: ignore[override]
        self, action: np.ndarray
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        door_closed = abs(self.data.qpos[self._door_qpos]) < LATCH_ANGLE
        self.data.eq_active[self._latch] = int(door_closed and not self._unlocked())
        return super().step(action)

    def evaluate_state(self, obs: np.ndarray, action: np.ndarray) -> tuple[float, dict[str, Any]]:
        """Success when the lock is open (door-unlock's test, in the door's frame) and the door is open."""
        unlocked = self._unlocked()
        assert self._target_pos is not None  # set by reset_model (as metaworld's own checks assume)
        opened = abs(self.data.geom("handle").xpos[0] - self._target_pos[0]) <= OPEN_SUCCESS
        success = unlocked and opened
        info = {
            "success": float(success),
            "unlocked": float(unlocked),
            "door_open": float(opened),
            "near_object": 0.0,
            "grasp_success": 0.0,
            "grasp_reward": 0.0,
            "in_place_reward": 0.0,
            "obj_to_target": 0.0,
            "unscaled_reward": 10.0 * success,
        }
        return 10.0 * success, info

    def _unlocked(self) -> bool:
        lock = self._world_to_door_frame(self._get_site_pos("lockStartUnlock"))
        return abs(lock[0] - self._unlock_target_local[0]) <= UNLOCK_SUCCESS

    def _world_to_door_frame(self, point: np.ndarray) -> np.ndarray:
        link = self.data.body("door_link")
        return link.xmat.reshape(3, 3).T @ (point - link.xpos)

    def _door_frame_to_world(self, point: np.ndarray) -> np.ndarray:
        link = self.data.body("door_link")
        return link.xmat.reshape(3, 3) @ point + link.xpos
