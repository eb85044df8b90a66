"""The BabyAI scene: one 7x7 room (5x5 floor) with four objects and two doors, its 35-d observation, and the
minigrid level that simulates it.

Observation (float32, integer-valued, room coordinates: the walls are rows/columns 0 and 6, the floor 1..5)::

    [0:5]    agent: x, y, direction (minigrid's: 0 east, 1 south, 2 west, 3 north),
             carried object's type and colour (0, 0 when the hands are empty)
    [5:25]   four object slots (balls, boxes, keys): type, colour, x, y, carried (1/0);
             a carried object sits at the agent's cell
    [25:35]  two door slots: type (door), colour, x, y on a wall, open (1/0)

Types: 1 ball, 2 box, 3 key, 4 door. Colours: 1 red, 2 green, 3 blue, 4 purple, 5 yellow, 6 grey. Slots are
filled in a random order at each reset; an object's type and colour never change, so the slot layout is fixed
for the episode. The room sits inside a second ring of walls: an agent standing in an open door still faces a
wall, never the edge of the grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # minigrid imports pygame, which greets on import

from minigrid.core.grid import Grid  # noqa: E402
from minigrid.core.roomgrid import Room  # noqa: E402
from minigrid.core.world_object import Ball, Box, Door, Key, Wall, WorldObj  # noqa: E402
from minigrid.envs.babyai.core.roomgrid_level import RoomGridLevel  # noqa: E402

from kalm.envs.babyai.missions import COLOURS, TYPES, Obj  # noqa: E402

ROOM = 7
"""The room's side including its walls (ImagineBench's BabyAI room); the floor is 5x5."""
FLOOR = range(1, ROOM - 1)
NUM_OBJECTS, NUM_DOORS = 4, 2
SLOT = 5
AGENT_DIM = 5
OBS_DIM = AGENT_DIM + SLOT * (NUM_OBJECTS + NUM_DOORS)
DOOR_SLOTS = tuple(range(NUM_OBJECTS, NUM_OBJECTS + NUM_DOORS))
DIRECTIONS = np.array([(1, 0), (0, 1), (-1, 0), (0, -1)])
"""Minigrid's direction vectors: 0 east (+x), 1 south (+y), 2 west, 3 north."""
WALL_CELLS = tuple(
    (x, y) for x in range(ROOM) for y in range(ROOM) if (x in (0, ROOM - 1)) != (y in (0, ROOM - 1))
)
"""Cells of the room's walls where a door can be (not the corners)."""
NUM_ACTIONS = 7
ACTIONS = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
"""BabyAI's discrete actions, by index."""
_OFFSET = 1  # room coordinates + 1 = minigrid grid coordinates (the outer ring of walls)


@dataclass(frozen=True)
class Thing:
    """An object or door of the scene: ``state`` is 1 when an object is carried or a door is open."""

    obj: Obj
    x: int
    y: int
    state: int = 0


@dataclass(frozen=True)
class Layout:
    """A whole scene: the agent's cell and direction, the four objects and the two doors (slot order)."""

    agent: tuple[int, int, int]
    objects: tuple[Thing, ...]
    doors: tuple[Thing, ...]

    @property
    def things(self) -> tuple[Thing, ...]:
        return (*self.objects, *self.doors)

    @property
    def carried(self) -> Thing | None:
        return next((thing for thing in self.objects if thing.state), None)


def encode(layout: Layout) -> np.ndarray:
    """The 35-d observation of ``layout`` (see the module docstring)."""
    x, y, direction = layout.agent
    carried = layout.carried
    observation = [x, y, direction, *(_codes(carried.obj) if carried else (0, 0))]
    for thing in layout.things:
        at = (x, y) if thing.state and thing.obj.type != "door" else (thing.x, thing.y)
        observation += [*_codes(thing.obj), *at, thing.state]
    return np.asarray(observation, dtype=np.float32)


def decode(observation: np.ndarray) -> Layout:
    """The layout an observation shows (values rounded to the nearest integer; codes must be valid)."""
    values = np.rint(np.asarray(observation, dtype=np.float64)).astype(int)
    things = []
    for slot in range(NUM_OBJECTS + NUM_DOORS):
        type_code, colour_code, x, y, state = values[AGENT_DIM + SLOT * slot : AGENT_DIM + SLOT * (slot + 1)]
        things.append(Thing(Obj(COLOURS[colour_code - 1], TYPES[type_code - 1]), int(x), int(y), int(state)))
    return Layout(
        (int(values[0]), int(values[1]), int(values[2]) % 4),
        tuple(things[:NUM_OBJECTS]),
        tuple(things[NUM_OBJECTS:]),
    )


def _codes(obj: Obj) -> tuple[int, int]:
    return TYPES.index(obj.type) + 1, COLOURS.index(obj.colour) + 1


class Crate(Box):
    """A box that stays a box: toggling it does nothing (minigrid's box would turn into its contents and leave
    an empty slot in the observation)."""

    def toggle(self, env: Any, pos: Any) -> bool:
        return False


_WORLD_OBJECTS = {"ball": Ball, "box": Crate, "key": Key}


class BabyAILevel(RoomGridLevel):
    """The minigrid level of a kalm BabyAI scene: ``load`` a layout and an instruction, then ``reset``.

    The BabyAI verifier (``instrs``) runs on every step as in BabyAI; kalm's judges read the observation
    (``observe``) instead. ``gen_obs`` is skipped: kalm never reads minigrid's partial view.
    """

    def __init__(self) -> None:
        super().__init__(
            room_size=ROOM + 2 * _OFFSET, num_rows=1, num_cols=1, max_steps=10**9, agent_view_size=7
        )
        self._layout: Layout | None = None
        self.slots: list[WorldObj] = []

    def load(self, layout: Layout, instrs: Any) -> None:
        self._layout, self.instrs = layout, instrs

    def gen_obs(self) -> None:
        return None

    def _gen_grid(self, width: int, height: int) -> None:
        assert self._layout is not None, "BabyAILevel: load() a layout before reset()"
        self.grid = Grid(width, height)
        self.room_grid = [[Room((0, 0), (width, height))]]
        for x in range(width):
            for y in range(height):
                if not (_OFFSET + 1 <= x <= width - _OFFSET - 2 and _OFFSET + 1 <= y <= height - _OFFSET - 2):
                    self.grid.set(x, y, Wall())
        x, y, direction = self._layout.agent
        self.agent_pos, self.agent_dir = (x + _OFFSET, y + _OFFSET), direction
        self.slots = []
        for thing in self._layout.things:
            if thing.obj.type == "door":
                item: WorldObj = Door(thing.obj.colour, is_open=bool(thing.state))
            else:
                item = _WORLD_OBJECTS[thing.obj.type](thing.obj.colour)
            if not (thing.state and thing.obj.type != "door"):
                self.put_obj(item, thing.x + _OFFSET, thing.y + _OFFSET)
            self.slots.append(item)
        self.mission = ""

    def reset(self, **kwargs: Any) -> Any:
        result = super().reset(**kwargs)
        layout = self._layout
        if layout is not None and layout.carried is not None:
            # in the hands: the verifier must know it, then it leaves the grid
            item = self.slots[layout.objects.index(layout.carried)]
            x, y = self.agent_pos
            self.grid.set(x, y, item)
            self.instrs.reset_verifier(self)
            self.grid.set(x, y, None)
            # minigrid's own pickup does the same; its attributes are declared None / tuple-or-None
            self.carrying = item  # type: ignore[assignment]
            item.cur_pos = np.array([-1, -1])  # type: ignore[assignment]
        return result

    def observe(self) -> np.ndarray:
        """The scene's 35-d observation now."""
        assert self._layout is not None
        x, y = (int(v) - _OFFSET for v in self.agent_pos)
        things = []
        carried = cast("WorldObj | None", self.carrying)  # minigrid declares it None; it holds the object
        for thing, item in zip(self._layout.things, self.slots, strict=True):
            if thing.obj.type == "door":
                things.append(replace(thing, state=int(cast(Door, item).is_open)))
            elif item is carried:
                things.append(replace(thing, x=x, y=y, state=1))
            else:
                column, row = cast("tuple[int, int]", item.cur_pos)  # on the grid: placed
                things.append(replace(thing, x=int(column) - _OFFSET, y=int(row) - _OFFSET, state=0))
        return encode(
            Layout((x, y, int(self.agent_dir)), tuple(things[:NUM_OBJECTS]), tuple(things[NUM_OBJECTS:]))
        )

    def picture(self, size: int) -> np.ndarray:
        """An RGB image of the room (the outer ring cropped), ``size`` x ``size`` pixels."""
        tile = max(8, -(-size // ROOM))
        image = self.get_frame(highlight=False, tile_size=tile)[
            tile * _OFFSET : -tile * _OFFSET, tile * _OFFSET : -tile * _OFFSET
        ]
        index = (np.arange(size) * image.shape[0] / size).astype(int)
        return np.ascontiguousarray(image[index][:, index])
