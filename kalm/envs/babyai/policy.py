"""Policies on BabyAI observations: the BabyAI bot as behaviour policy, and the "knows the object" floor.

``BotPolicy`` runs minigrid's ``BabyAIBot`` (the planner that solves every level of the BabyAI paper) on a
mirror of the scene rebuilt from the observation, so it needs nothing but ``(observation, goal_id)``. While
the observations it is given follow from its own actions, it keeps the bot's plan and tells it the action
taken (the bot recovers from noise as it was built to); any other observation starts a fresh bot there. The
bot sees the whole room (kalm's observation is the whole room). With probability ``noise`` the policy takes a
uniformly random action instead.

``named_object_floor``: a policy that knows which object the mission names and nothing of what to do with it:
it walks (shortest path, turns and forward only) to face the object, then acts at random.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from minigrid.utils.baby_ai_bot import BabyAIBot

from kalm.envs.babyai.missions import objects, parse_spec, to_instr
from kalm.envs.babyai.scene import DIRECTIONS, FLOOR, NUM_ACTIONS, BabyAILevel, Layout, decode
from kalm.errors import KalmError

LEFT, RIGHT, FORWARD = 0, 1, 2


class _Bot(BabyAIBot):
    """The BabyAI bot with the whole room in view from the start (kalm's observation is fully observable)."""

    def __init__(self, level: BabyAILevel) -> None:
        super().__init__(level)
        self.vis_mask[:] = True

    def _process_obs(self) -> None:  # nothing left to discover
        return None


class BotPolicy:
    """``policy(observation, goal_id) -> action``: the BabyAI bot with noise (see the module docstring)."""

    def __init__(self, *, noise: float = 0.1, rng: np.random.Generator | None = None) -> None:
        if not 0.0 <= noise <= 1.0:
            raise KalmError(f"behaviour policy noise {noise!r} is invalid; expected a probability in [0, 1]")
        self.noise = noise
        self.rng = rng if rng is not None else np.random.default_rng()
        self._mirror = BabyAILevel()
        self._bot: _Bot | None = None
        self._goal: str | None = None
        self._expected: np.ndarray | None = None
        self._last: int | None = None

    def __call__(self, observation: np.ndarray, goal_id: str) -> int:
        observation = np.asarray(observation, dtype=np.float32)
        taken = self._last
        expected = self._expected
        if (
            self._bot is None
            or goal_id != self._goal
            or expected is None
            or not np.array_equal(observation, expected)
        ):
            self._start(observation, goal_id)
            taken = None
        action = self._suggest(taken)
        if self.noise and self.rng.random() < self.noise:
            action = int(self.rng.integers(NUM_ACTIONS))
        self._mirror.step(action)
        self._expected, self._last = self._mirror.observe(), action
        return action

    def _start(self, observation: np.ndarray, goal_id: str) -> None:
        self._mirror.load(decode(observation), to_instr(parse_spec(goal_id)))
        self._mirror.reset()
        self._bot, self._goal = _Bot(self._mirror), goal_id

    def _suggest(self, taken: int | None) -> int:
        assert self._bot is not None and self._goal is not None
        try:
            return int(self._bot.replan(taken))
        except Exception:  # noqa: BLE001 -- the bot gives up after some noisy actions: plan afresh from here
            self._start(self._mirror.observe(), self._goal)
            try:
                return int(self._bot.replan())
            except Exception:  # noqa: BLE001
                return int(self.rng.integers(NUM_ACTIONS))


def named_object_floor(rng: np.random.Generator) -> Any:
    """The "knows the object, not the task" floor for one episode (see the module docstring); the object is
    one the mission names, drawn once."""
    chosen: dict[str, Any] = {}

    def policy(observation: np.ndarray, goal_id: str) -> int:
        if "obj" not in chosen:
            named = objects(parse_spec(goal_id))
            chosen["obj"] = named[int(rng.integers(len(named)))]
        layout = decode(observation)
        target = next((t for t in layout.things if t.obj == chosen["obj"]), None)
        if target is None or (target.state and target.obj.type != "door"):
            return int(rng.integers(NUM_ACTIONS))
        action = walk_to_face(layout, (target.x, target.y))
        return int(rng.integers(NUM_ACTIONS)) if action is None else action

    return policy


def walk_to_face(layout: Layout, target: tuple[int, int]) -> int | None:
    """The turn or forward step that starts the shortest walk to face ``target``; ``None`` when already facing
    it; a right turn when no floor cell beside it can be reached."""
    x, y, direction = layout.agent
    front = (x + int(DIRECTIONS[direction][0]), y + int(DIRECTIONS[direction][1]))
    if front == target:
        return None
    beside = {(target[0] + int(dx), target[1] + int(dy)) for dx, dy in DIRECTIONS}
    path = _shortest_path(layout, (x, y), beside)
    if path is None:
        return RIGHT
    goal = target if len(path) == 1 else path[1]
    return _step_towards(direction, (x, y), goal)


def _step_towards(direction: int, at: tuple[int, int], cell: tuple[int, int]) -> int:
    """Forward if ``cell`` (a neighbour) is in front, else the turn that faces it soonest."""
    offset = (cell[0] - at[0], cell[1] - at[1])
    wanted = next(index for index, vector in enumerate(DIRECTIONS) if tuple(vector) == offset)
    if wanted == direction:
        return FORWARD
    return LEFT if (direction - wanted) % 4 == 1 else RIGHT


def _shortest_path(
    layout: Layout, start: tuple[int, int], goals: set[tuple[int, int]]
) -> list[tuple[int, int]] | None:
    blocked = {(t.x, t.y) for t in layout.objects if not t.state}
    floor = {(x, y) for x in FLOOR for y in FLOOR} - blocked
    previous: dict[tuple[int, int], Any] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        if cell in goals:
            path = [cell]
            while previous[path[-1]] is not None:
                path.append(previous[path[-1]])
            return path[::-1]
        for dx, dy in DIRECTIONS:
            nxt = (cell[0] + int(dx), cell[1] + int(dy))
            if nxt in floor and nxt not in previous:
                previous[nxt] = cell
                queue.append(nxt)
    return None
