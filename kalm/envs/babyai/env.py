"""``kalm/BabyAI-v0``: one BabyAI room, BabyAI's seven actions, missions in natural language."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from kalm.envs.babyai import judges
from kalm.envs.babyai.missions import parse_spec, to_instr
from kalm.envs.babyai.sampling import sample_layout
from kalm.envs.babyai.scene import NUM_ACTIONS, OBS_DIM, ROOM, BabyAILevel, decode
from kalm.envs.goals import Goal, check_level
from kalm.errors import KalmError

if TYPE_CHECKING:
    from kalm.envs.base import EnvSuite


class BabyAIEnv(gym.Env):
    """BabyAI (minigrid 3.2) with kalm's 35-d symbolic observation (``kalm.envs.babyai.scene``).

    Action: ``Discrete(7)``, BabyAI's left, right, forward, pickup, drop, toggle, done. An episode follows one
    mission, picked by ``reset(options={"goal": id, "level": level})`` or drawn from ``level`` (default
    ``train``); ``options={"observation": 35-d array}`` places the scene an observation shows (what
    ``BabyAISuite.start_options`` returns) instead of sampling one. The episode terminates when kalm's judge
    says success or failure (``kalm.envs.babyai.judges``) and is truncated after ``horizon`` steps, by default
    its level's (``kalm.envs.babyai.PROTOCOLS``). ``info`` carries ``goal_id``, ``level``, ``instruction``,
    ``success``, ``failure`` and ``babyai_success``: whether BabyAI's own verifier of the mission reports
    success at this step.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        *,
        render_mode: str | None = None,
        horizon: int | None = None,
        level: str = "train",
        render_size: int = 224,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise KalmError(f"render_mode {render_mode!r} is not supported; expected None or 'rgb_array'")
        self.render_mode = render_mode
        self.horizon = horizon
        self.level = check_level(level)
        self.render_size = render_size
        self.scene = BabyAILevel()
        self.observation_space = gym.spaces.Box(
            0.0, float(ROOM - 1), (OBS_DIM,), np.float32
        )  # cells, codes 0..6
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self._goal: Goal | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        options = options or {}
        level = check_level(options.get("level", self.level))
        suite = _suite()
        if "goal" in options:
            self._goal = suite.goal(level, options["goal"])
        else:
            pool = suite.goals(level)
            self._goal = pool[int(self.np_random.integers(len(pool)))]
        self._spec = parse_spec(self._goal.id)
        self._instruction = self._goal.sentence(self.np_random)
        placed = options.get("observation")
        layout = decode(placed) if placed is not None else sample_layout(self._spec, level, self.np_random)
        self.scene.load(layout, to_instr(self._spec))
        self.scene.reset()
        self._observations = [self.scene.observe()]
        self._horizon = self.horizon or suite.protocol(level).horizon
        return self._observations[0].copy(), self._info(False)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._goal is None:
            raise KalmError("BabyAI: call reset() before step()")
        if not self.action_space.contains(action):
            raise KalmError(f"BabyAI action {action!r} is invalid; expected an integer in [0, {NUM_ACTIONS})")
        _, babyai_reward, babyai_done, _, _ = self.scene.step(int(action))
        observation = self.scene.observe()
        self._observations.append(observation)
        history = np.stack(self._observations)
        success = bool(judges.success(self._spec, history[1:], history[0])[-1])
        failure = not success and bool(judges.failure(self._spec, history[1:], history[0])[-1])
        reward = float(judges.rewards(self._spec, history)[-1]) if success else 0.0
        truncated = len(self._observations) - 1 >= self._horizon and not (success or failure)
        babyai_success = bool(babyai_done and babyai_reward > 0)
        return (
            observation.copy(),
            reward,
            success or failure,
            truncated,
            self._info(success, failure, babyai_success),
        )

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        return self.scene.picture(self.render_size)

    def _info(self, success: bool, failure: bool = False, babyai_success: bool = False) -> dict[str, Any]:
        assert self._goal is not None
        return {
            "goal_id": self._goal.id,
            "level": self._goal.level,
            "instruction": self._instruction,
            "success": success,
            "failure": failure,
            "babyai_success": babyai_success,
        }


def _suite() -> EnvSuite:
    from kalm.envs import get_suite

    return get_suite("babyai")
