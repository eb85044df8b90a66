"""The BabyAI goal sets per level, with a strict split of object-colour combinations.

Of the 18 object-colour combinations (6 colours x ball/box/key) 12 are training objects and 6 are held out
(one per colour, each type twice); of the 6 door colours, 4 are training doors and 2 held out. Held-out
combinations never appear in a training scene, not even as distractors.

- ``train``: go to each training object and door (16), pick up each training object (12), open each
  training door (4), put each training object next to three others (36): 68 missions, 8 phrasings each;
- ``rephrase``: the same 68 missions in novel words and styles;
- ``easy``: the same kinds of mission on the held-out combinations: go to (8), pick up (6), open (2), put a
  held-out object next to a training one and a training one next to a held-out one (12): 28 missions in the
  training phrasings;
- ``hard``: 30 "X, then Y" and 30 "X after you Y" of two training missions on different objects, drawn once
  from a fixed seed.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from kalm.envs.babyai import language
from kalm.envs.babyai.missions import (
    COLOURS,
    PICKABLE,
    GoTo,
    Mission,
    Obj,
    Open,
    PickUp,
    PutNext,
    Sequence,
    Spec,
    objects,
)
from kalm.envs.babyai.scene import NUM_DOORS, NUM_OBJECTS
from kalm.envs.goals import Goal, check_level

HELD_OUT_OBJECTS = tuple(Obj(colour, PICKABLE[index % 3]) for index, colour in enumerate(COLOURS))
"""red ball, green box, blue key, purple ball, yellow box, grey key."""
TRAIN_OBJECTS = tuple(
    Obj(colour, type_)
    for colour in COLOURS
    for type_ in PICKABLE
    if Obj(colour, type_) not in HELD_OUT_OBJECTS
)
HELD_OUT_DOORS = (Obj("blue", "door"), Obj("yellow", "door"))
TRAIN_DOORS = tuple(Obj(colour, "door") for colour in COLOURS if Obj(colour, "door") not in HELD_OUT_DOORS)
PUTNEXT_PARTNERS = (1, 5, 7)
"""Training object ``i`` is put next to training objects ``i + k`` (mod 12): each is moved three times and
is the fixed object three times."""
NUM_SEQUENCES = 30
_HARD_SEED = 20240409


def train_missions() -> tuple[Mission, ...]:
    """The 68 training missions in a fixed order."""
    count = len(TRAIN_OBJECTS)
    return (
        *(GoTo(obj) for obj in (*TRAIN_OBJECTS, *TRAIN_DOORS)),
        *(PickUp(obj) for obj in TRAIN_OBJECTS),
        *(Open(door) for door in TRAIN_DOORS),
        *(
            PutNext(TRAIN_OBJECTS[i], TRAIN_OBJECTS[(i + k) % count])
            for i in range(count)
            for k in PUTNEXT_PARTNERS
        ),
    )


def easy_missions() -> tuple[Mission, ...]:
    """The 28 missions on held-out combinations."""
    held = HELD_OUT_OBJECTS
    return (
        *(GoTo(obj) for obj in (*held, *HELD_OUT_DOORS)),
        *(PickUp(obj) for obj in held),
        *(Open(door) for door in HELD_OUT_DOORS),
        *(PutNext(obj, TRAIN_OBJECTS[2 * i]) for i, obj in enumerate(held)),
        *(PutNext(TRAIN_OBJECTS[2 * i + 1], obj) for i, obj in enumerate(held)),
    )


@cache
def hard_specs() -> tuple[Sequence, ...]:
    """The sequences of the hard level, drawn once from a fixed seed."""
    rng = np.random.default_rng(_HARD_SEED)
    pool = train_missions()
    drawn: dict[str, Sequence] = {}
    for connective in ("then", "after"):
        count = 0
        while count < NUM_SEQUENCES:
            a, b = (pool[int(i)] for i in rng.choice(len(pool), size=2, replace=False))
            spec = Sequence(connective, a, b)
            if spec.id not in drawn and fits(spec) and not set(objects(a)) & set(objects(b)):
                drawn[spec.id] = spec
                count += 1
    return tuple(drawn.values())


def fits(spec: Spec) -> bool:
    """Whether a scene has room for every object ``spec`` names."""
    named = objects(spec)
    doors = sum(obj.type == "door" for obj in named)
    return doors <= NUM_DOORS and len(named) - doors <= NUM_OBJECTS


@cache
def goals(level: str) -> tuple[Goal, ...]:
    """All goals of ``level``."""
    check_level(level)
    if level == "train":
        return tuple(Goal(m.id, level, language.training_sentences(m)) for m in train_missions())
    if level == "rephrase":
        return tuple(Goal(m.id, level, language.rephrase_sentences(m)) for m in train_missions())
    if level == "easy":
        return tuple(Goal(m.id, level, language.training_sentences(m)) for m in easy_missions())
    return tuple(Goal(s.id, level, language.sequence_sentences(s)) for s in hard_specs())


def scene_pools(level: str) -> tuple[tuple[Obj, ...], tuple[Obj, ...]]:
    """The objects and doors that may fill a scene of ``level`` besides the ones its goal names: training
    combinations only, so held-out ones are seen only where a goal names them."""
    check_level(level)
    return TRAIN_OBJECTS, TRAIN_DOORS
