"""Random BabyAI scenes for a mission: the objects it names plus distractors, placed so that the mission is
doable without moving anything else and is not already done.

Distractors come from ``goals.scene_pools`` (training combinations only). Every object and door has a floor
cell beside it that the agent reaches without moving anything (BabyAI's ``check_objs_reachable``), the
objects of a put-next mission do not start side by side (BabyAI rejects that too), and no clause of the
mission holds at the start.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from kalm.envs.babyai import judges
from kalm.envs.babyai.goals import scene_pools
from kalm.envs.babyai.missions import Obj, PutNext, Spec, objects, parts
from kalm.envs.babyai.scene import FLOOR, NUM_DOORS, NUM_OBJECTS, WALL_CELLS, Layout, Thing, encode
from kalm.errors import KalmError

_ATTEMPTS = 1000
_FLOOR_CELLS = tuple((x, y) for x in FLOOR for y in FLOOR)


def sample_layout(spec: Spec, level: str, rng: np.random.Generator) -> Layout:
    """A scene for ``spec`` drawn with ``rng`` (see the module docstring)."""
    named = objects(spec)
    pool_objects, pool_doors = scene_pools(level)
    for _ in range(_ATTEMPTS):
        chosen_objects = _fill([o for o in named if o.type != "door"], pool_objects, NUM_OBJECTS, rng)
        chosen_doors = _fill([o for o in named if o.type == "door"], pool_doors, NUM_DOORS, rng)
        door_cells = [WALL_CELLS[int(i)] for i in rng.choice(len(WALL_CELLS), NUM_DOORS, replace=False)]
        cells = [_FLOOR_CELLS[int(i)] for i in rng.choice(len(_FLOOR_CELLS), NUM_OBJECTS + 1, replace=False)]
        layout = Layout(
            (*cells[-1], int(rng.integers(4))),
            tuple(Thing(obj, *cell) for obj, cell in zip(chosen_objects, cells, strict=False)),
            tuple(Thing(obj, *cell) for obj, cell in zip(chosen_doors, door_cells, strict=True)),
        )
        if _valid(spec, layout):
            return layout
    raise KalmError(f"BabyAI: no valid scene for {spec.id!r} in {_ATTEMPTS} attempts")


def _fill(named: list[Obj], pool: tuple[Obj, ...], count: int, rng: np.random.Generator) -> list[Obj]:
    """The named objects and distractors from ``pool``, ``count`` in all, in a random slot order."""
    others = [obj for obj in pool if obj not in named]
    chosen = [*named, *(others[int(i)] for i in rng.choice(len(others), count - len(named), replace=False))]
    return [chosen[int(i)] for i in rng.permutation(count)]


def _valid(spec: Spec, layout: Layout) -> bool:
    if not reachable(layout):
        return False
    observation = encode(layout)
    for mission in parts(spec):
        if judges.holds(mission, observation[None], observation)[0]:
            return False
        if isinstance(mission, PutNext) and _side_by_side(layout, mission):
            return False
    return True


def _side_by_side(layout: Layout, mission: PutNext) -> bool:
    at = {thing.obj: (thing.x, thing.y) for thing in layout.things}
    (ax, ay), (bx, by) = at[mission.move], at[mission.fixed]
    return abs(ax - bx) + abs(ay - by) == 1


def reachable(layout: Layout) -> bool:
    """Whether every object and door has a floor cell beside it that the agent walks to without moving
    anything."""
    blocked = {(thing.x, thing.y) for thing in layout.objects}
    start = layout.agent[:2]
    seen, queue = {start}, deque([start])
    while queue:
        x, y = queue.popleft()
        for cell in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
            if cell in _FLOOR_SET and cell not in blocked and cell not in seen:
                seen.add(cell)
                queue.append(cell)
    return all(
        any(cell in seen for cell in ((t.x + 1, t.y), (t.x - 1, t.y), (t.x, t.y + 1), (t.x, t.y - 1)))
        for t in layout.things
    )


_FLOOR_SET = frozenset(_FLOOR_CELLS)
