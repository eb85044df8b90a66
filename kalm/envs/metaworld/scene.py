"""One Meta-World v3 environment per task, with seeded random resets and the 91-d entity-slot mapping.

A ``TaskScene`` owns the Meta-World environment of one task (built on first use, then reused), resets it
with a seed (random object and goal positions drawn from Meta-World's own reset spaces), steps it, and maps
its 39-d observation into the 91-d layout of ``entities.py`` with index arrays computed once per task.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import mujoco
import numpy as np
from scipy.spatial.transform import Rotation

from kalm.envs.metaworld import entities
from kalm.envs.metaworld.composed import LockedDoorOpenEnv, MakeCoffeeEnv
from kalm.envs.metaworld.tasks import Reading, Task

COMPOSED = {"kalm:make-coffee": MakeCoffeeEnv, "kalm:locked-door-open": LockedDoorOpenEnv}
IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])
_OBJECT_START = 4


class TaskScene:
    """The Meta-World environment of one task, seen through the 91-d observation."""

    placed_bodies: np.ndarray
    """The bodies Meta-World places at reset: set on first use by ``placement._placed_bodies``."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.env = _build(task.env)
        self._renderer: mujoco.Renderer | None = None
        source, target = [0, 1, 2, 3], [0, 1, 2, 3]
        for index, entity in enumerate(task.observed):
            start = _OBJECT_START + entities.SLOT_SIZE * index
            source.extend(range(start, start + entities.SLOT_SIZE))
            slot = entities.slot_index(entity)
            target.extend(range(slot.start, slot.stop))
        self._source = np.asarray(source)
        self._target = np.asarray(target)
        self._extras = [
            (entities.slot_index(reading.entity), _reader(self.env, reading)) for reading in task.extras
        ]

    def reset(self, seed: int) -> np.ndarray:
        """Reset to a random initial state drawn with ``seed``; returns the 91-d observation."""
        self.env.np_random = np.random.default_rng(seed)
        self.env.reset()
        # Some resets (coffee-push) move a body after their last mj_forward: refresh before observing
        mujoco.mj_forward(self.env.model, self.env.data)
        return self.observe(self.env._get_obs())

    def step(self, action: np.ndarray) -> tuple[np.ndarray, bool, dict[str, Any]]:
        """Apply a 4-d action; returns the 91-d observation, Meta-World's success and its info."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Meta-World warns when a step leaves the hand's box
            raw, _, _, _, info = self.env.step(action)
        return self.observe(raw), bool(info["success"]), info

    def observe(self, raw: np.ndarray) -> np.ndarray:
        """The 91-d float32 observation for one of the environment's 39-d observations."""
        observation = np.zeros(entities.OBS_DIM, dtype=np.float64)
        observation[self._target] = raw[self._source]
        observation[entities.TARGET] = self.env._target_pos  # unclipped, unlike obs[36:39]
        for slot, read in self._extras:
            observation[slot] = read()
        return observation.astype(np.float32)

    def render(self, size: int, camera: str) -> np.ndarray:
        """An RGB image of the scene from ``camera`` (``corner`` is mounted upside down: turned 180 deg)."""
        if self._renderer is None or self._renderer.width != size:
            self.close()
            self._renderer = mujoco.Renderer(self.env.model, size, size)
        self._renderer.update_scene(self.env.data, camera=camera)
        image = self._renderer.render()
        return np.ascontiguousarray(np.rot90(image, 2)) if camera == "corner" else image

    def close(self) -> None:
        """Free the renderer, if one was made."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def _build(name: str) -> Any:
    """A Meta-World environment with the goal in its observation and seeded random resets."""
    if name in COMPOSED:
        env = COMPOSED[name]()
    else:
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        env = ALL_V3_ENVIRONMENTS[name]()
    env._freeze_rand_vec = False
    env.seeded_rand_vec = True  # draw reset positions from env.np_random
    env._set_task_called = True
    env.max_path_length = 2**62  # kalm truncates episodes itself; Meta-World would raise after 500 steps
    return env


def _reader(env: Any, reading: Reading) -> Callable[[], np.ndarray]:
    """A function returning the 7 numbers (position, quaternion) of an extra entity."""
    position = _position(env, *reading.position)
    orientation = _orientation(env, *reading.orientation)
    return lambda: np.concatenate((position(), orientation()))


def _position(env: Any, kind: str, name: str) -> Callable[[], np.ndarray]:
    data = env.data
    if kind == "body":
        return lambda: data.body(name).xpos
    if kind == "site":
        return lambda: data.site(name).xpos
    geom = _mesh_geom(env.model, name) if kind == "mesh" else env.model.geom(name).id
    return lambda: data.geom_xpos[geom]


def _orientation(env: Any, kind: str, name: str) -> Callable[[], np.ndarray]:
    data = env.data
    if kind == "fixed":
        return lambda: IDENTITY
    if kind == "body":
        return lambda: data.body(name).xquat
    geom = _mesh_geom(env.model, name) if kind == "mesh" else env.model.geom(name).id
    return lambda: Rotation.from_matrix(data.geom_xmat[geom].reshape(3, 3)).as_quat()


def _mesh_geom(model: mujoco.MjModel, mesh: str) -> int:
    """The first geom that draws ``mesh``."""
    mesh_id = model.mesh(mesh).id
    hits = np.flatnonzero((model.geom_type == mujoco.mjtGeom.mjGEOM_MESH) & (model.geom_dataid == mesh_id))
    return int(hits[0])
