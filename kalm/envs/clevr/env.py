"""``kalm/CLEVR-Robot-v0``: five balls on a table, 40 discrete pushes, goals in natural language."""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from kalm.envs.clevr import goals, judges
from kalm.envs.clevr.physics import NUM_ACTIONS, NUM_BALLS, TABLE_HALF_SIZE, ClevrPhysics, sample_positions
from kalm.envs.clevr.specs import parse_spec
from kalm.envs.goals import Goal, check_level
from kalm.errors import KalmError

if TYPE_CHECKING:
    from kalm.envs.base import EnvSuite

HORIZON = 50
_RESET_ATTEMPTS = 100


class ClevrRobotEnv(gym.Env):
    """CLEVR-Robot on MuJoCo with the gymnasium API.

    Observation: the balls' (x, y) in colour order red, blue, green, purple, cyan (10-d float32).
    Action: ``Discrete(40)``, ball index x 8 directions (see ``physics``). An episode follows one goal,
    picked by ``reset(options={"goal": id, "level": level})`` or drawn from ``level`` (default
    ``train``); ``options={"positions": (5, 2) array}`` places the balls instead of sampling them.
    Resets never start in a state that already achieves the goal. The episode terminates when the goal's
    judge says success or failure (a ball the goal does not involve pushed away) and is truncated after
    ``horizon`` steps, by default the level's (one push for one-step goals, see
    ``kalm.envs.clevr.PROTOCOLS``). ``info`` carries ``goal_id``, ``level``, ``instruction``, ``success`` and
    ``failure``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        horizon: int | None = None,
        level: str = "train",
        render_size: int = 256,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise KalmError(f"render_mode {render_mode!r} is not supported; expected None or 'rgb_array'")
        self.render_mode = render_mode
        self.horizon = horizon
        self.level = check_level(level)
        self.render_size = render_size
        self.physics = ClevrPhysics()
        self.observation_space = gym.spaces.Box(
            -TABLE_HALF_SIZE, TABLE_HALF_SIZE, (2 * NUM_BALLS,), np.float32
        )
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self._renderer: Any = None
        self._goal: Goal | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        level = check_level(options.get("level", self.level))
        if "goal" in options:
            self._goal = _suite().goal(level, options["goal"])
        else:
            pool = goals.goals(level)
            self._goal = pool[int(self.np_random.integers(len(pool)))]
        self._spec = parse_spec(self._goal.id)
        self._instruction = self._goal.sentence(self.np_random)
        self._place(options.get("positions"))
        self._initial = self._observation()
        self._steps = 0
        self._horizon = self.horizon or _suite().protocol(level).horizon
        return self._initial.copy(), self._info(success=False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._goal is None:
            raise KalmError("CLEVR-Robot: call reset() before step()")
        if not self.action_space.contains(action):
            raise KalmError(
                f"CLEVR-Robot action {action!r} is invalid; expected an integer in [0, {NUM_ACTIONS})"
            )
        before = self._observation()
        self.physics.push(int(action))
        after = self._observation()
        self._steps += 1
        reward, success, failure = judges.transition(self._spec, before, after, self._initial)
        truncated = self._steps >= self._horizon and not (success or failure)
        return after, reward, success or failure, truncated, self._info(success, failure)

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            import mujoco

            self._renderer = mujoco.Renderer(self.physics.model, self.render_size, self.render_size)
            atexit.register(self.close)  # after mujoco's own EGL exit hook, so it runs before it
        self._renderer.update_scene(self.physics.data, camera="top")
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _place(self, positions: Any) -> None:
        if positions is not None:
            positions = np.asarray(positions, dtype=np.float64).reshape(NUM_BALLS, 2)
            self.physics.set_positions(positions)
            return
        for _ in range(_RESET_ATTEMPTS):
            self.physics.set_positions(sample_positions(self.np_random))
            observation = self._observation()
            if not judges.success(self._spec, observation[None], observation)[0]:
                return

    def _observation(self) -> np.ndarray:
        return self.physics.positions.reshape(-1).astype(np.float32)

    def _info(self, success: bool, failure: bool = False) -> dict[str, Any]:
        assert self._goal is not None
        return {
            "goal_id": self._goal.id,
            "level": self._goal.level,
            "instruction": self._instruction,
            "success": success,
            "failure": failure,
        }


def _suite() -> EnvSuite:
    from kalm.envs import get_suite

    return get_suite("clevr")
