"""``kalm/MetaWorld-v0``: one gymnasium environment over all of KALM's Meta-World tasks."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import gymnasium as gym
import numpy as np

from kalm.envs.goals import Goal, check_level
from kalm.envs.metaworld import entities, rewards, tasks
from kalm.envs.metaworld.distractors import apply_distractors, sample_distractors
from kalm.envs.metaworld.scene import TaskScene
from kalm.envs.metaworld.tasks import Task
from kalm.errors import KalmError, UnknownNameError

HORIZON = 100
CAMERAS = ("corner", "corner2", "corner3", "corner4", "topview", "behindGripper", "gripperPOV")


class MetaWorldEnv(gym.Env):
    """Meta-World v3 tasks behind KALM's 91-d entity-slot observation.

    Observation: 91-d float32 (``entities.py``). Action: 4-d in [-1, 1] (hand displacement, grip effort).
    An episode follows one task, picked by ``reset(options={"goal": task, "level": level})`` or drawn from
    ``level`` (default ``train``); object and goal positions are drawn from Meta-World's reset spaces with the
    reset's seed. The episode terminates on Meta-World's success and is truncated after ``horizon`` steps. The
    reward is ``rewards.py``'s potential difference with Meta-World's own success deciding the +10 (the
    state-only judge decides it for imaginary rollouts; the two agree except at the reach tasks' boundary).
    ``info`` carries ``goal_id``, ``level``, ``instruction`` and ``success``.

    Args:
        render_mode: ``None`` or ``"rgb_array"``.
        horizon: steps before truncation.
        level: the default goal level of resets.
        distractors: how many irrelevant slots to fill with a distractor entity at each reset (0 or 1 in the
            paper's test setting); ``options={"distractors": n}`` overrides it for one reset.
        render_size: side of rendered square images, in pixels.
        camera: Meta-World camera to render from.
        max_scenes: how many tasks' Meta-World environments to keep built (about 35 MB each, mostly meshes);
            the least recently used one is dropped beyond it. ``None`` keeps every task's.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        horizon: int = HORIZON,
        level: str = "train",
        distractors: int = 0,
        render_size: int = 256,
        camera: str = "corner",
        max_scenes: int | None = None,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise KalmError(f"render_mode {render_mode!r} is not supported; expected None or 'rgb_array'")
        if camera not in CAMERAS:
            cameras = ", ".join(CAMERAS)
            raise UnknownNameError(f"unknown Meta-World camera {camera!r}; expected one of {cameras}")
        if horizon < 1 or distractors < 0 or (max_scenes is not None and max_scenes < 2):
            raise KalmError(
                f"horizon={horizon}, distractors={distractors}, max_scenes={max_scenes} are invalid; "
                "expected horizon >= 1, distractors >= 0, max_scenes >= 2 or None"
            )
        self.render_mode, self.horizon, self.level = render_mode, horizon, check_level(level)
        self.distractors, self.render_size, self.camera = distractors, render_size, camera
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (entities.OBS_DIM,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.max_scenes = max_scenes
        self._scenes: OrderedDict[str, TaskScene] = OrderedDict()
        self._scene: TaskScene | None = None
        self.distractor_poses: dict[str, np.ndarray] = {}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        level = check_level(options.get("level", self.level))
        pool = tasks.goals(level)
        self._goal = tasks.goal(level, options["goal"]) if "goal" in options else self._draw(pool)
        self._task = tasks.get_task(self._goal.id)
        self._scene = self.scene(self._task)
        self._instruction = self._goal.sentence(self.np_random)
        observation = self._scene.reset(int(self.np_random.integers(2**31)))
        count = int(options.get("distractors", self.distractors))
        poses = sample_distractors(self._task, count, self.np_random, self.scene) if count else {}
        self.distractor_poses = poses
        self._initial = apply_distractors(observation, self.distractor_poses)
        self._phi = rewards.potential(self._task.name, observation[None], self._initial, np.zeros(1, bool))[0]
        self._steps = 0
        return observation.copy(), self._info(False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._scene is None:
            raise KalmError("Meta-World: call reset() before step()")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (4,) or not np.all(np.isfinite(action)):
            raise KalmError(
                f"Meta-World action {action.tolist()!r} is invalid; expected 4 finite numbers in [-1, 1]"
            )
        observation, success, _ = self._scene.step(np.clip(action, -1.0, 1.0))
        apply_distractors(observation, self.distractor_poses)
        phi, _ = rewards.potential(self._task.name, observation[None], self._initial, np.array([success]))
        reward = float(rewards.transition_rewards(self._phi, phi, np.array([success]))[0])
        self._phi = phi
        self._steps += 1
        truncated = self._steps >= self.horizon and not success
        return observation.copy(), reward, success, truncated, self._info(success)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array" or self._scene is None:
            return None
        return self._scene.render(self.render_size, self.camera)

    def close(self) -> None:
        for scene in self._scenes.values():
            scene.close()
            scene.env.close()
        self._scenes.clear()
        self._scene = None

    def scene(self, task: Task) -> TaskScene:
        """The (cached) Meta-World scene of ``task``, built on first use."""
        if task.name in self._scenes:
            self._scenes.move_to_end(task.name)
            return self._scenes[task.name]
        while self.max_scenes is not None and len(self._scenes) >= self.max_scenes:
            name = next(name for name in self._scenes if self._scenes[name] is not self._scene)
            dropped = self._scenes.pop(name)
            dropped.close()
            dropped.env.close()
        self._scenes[task.name] = TaskScene(task)
        return self._scenes[task.name]

    @property
    def task(self) -> Task:
        """The task of the current episode."""
        if self._scene is None:
            raise KalmError("Meta-World: call reset() first")
        return self._task

    def _draw(self, pool: tuple[Goal, ...]) -> Goal:
        return pool[int(self.np_random.integers(len(pool)))]

    def _info(self, success: bool) -> dict[str, Any]:
        return {
            "goal_id": self._goal.id,
            "level": self._goal.level,
            "instruction": self._instruction,
            "success": bool(success),
        }
