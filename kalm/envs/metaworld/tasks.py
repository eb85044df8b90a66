"""The Meta-World tasks of KALM per level (reference §5.2, §5.3) and how each fills the 91-d observation.

Training (and, with new instructions, rephrase): reach, push, pick-place, button-press, door-unlock,
door-open, window-open, faucet-open, coffee-push, coffee-button. Unseen easy: reach-wall, push-wall,
pick-place-wall, button-press-wall, door-lock, door-close, window-close, faucet-close. Unseen hard: hammer,
soccer and the two composed tasks make-coffee and locked-door-open (``composed.py``).

Every entity of a task's scene that has a slot is filled: the one or two objects of Meta-World's own 39-d
observation (``observed``) plus parts of the scene that Meta-World leaves out of it (``extras``: the walls,
the coffee machine, the mug under the machine, the door handle next to a lock).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from kalm.envs.goals import Goal, check_level
from kalm.envs.metaworld.language import sentences
from kalm.errors import UnknownNameError


@dataclass(frozen=True)
class Reading:
    """Where to read an extra entity in the simulator.

    ``position`` and ``orientation`` are ``(kind, name)`` with kind ``body`` (xpos / xquat), ``site``
    (position only), ``geom`` (xpos / quaternion of xmat, x-y-z-w as Meta-World reports geoms) or ``mesh``
    (the geom drawing that mesh); orientation ``("fixed", "")`` is the identity (w-x-y-z).
    """

    entity: str
    position: tuple[str, str]
    orientation: tuple[str, str]


@dataclass(frozen=True)
class Expert:
    """One scripted Meta-World expert and what it reads: the entity it sees as its object(s)."""

    policy: str
    """Class name in ``metaworld.policies``."""
    entities: tuple[str, ...]


@dataclass(frozen=True)
class Task:
    """A task of the suite: its Meta-World environment, how it fills the 91-d state, its experts."""

    name: str
    level: str
    """``train``, ``easy`` or ``hard`` (rephrase reuses the training tasks)."""
    env: str
    """A Meta-World v3 environment name, or ``kalm:`` + a composed task."""
    observed: tuple[str, ...]
    """Entities of Meta-World's 39-d observation, in order (``obs[4:11]``, ``obs[11:18]``)."""
    extras: tuple[Reading, ...] = ()
    experts: tuple[Expert, ...] = ()

    @property
    def entities(self) -> tuple[str, ...]:
        """Every entity slot this task fills."""
        return self.observed + tuple(reading.entity for reading in self.extras)


WALL = Reading("wall", ("body", "wall"), ("body", "wall"))
COFFEE_MACHINE = Reading("coffee_machine", ("body", "coffee_machine"), ("body", "coffee_machine"))
MUG = Reading("target_object", ("body", "obj"), ("geom", "mug"))
COFFEE_BUTTON = Reading("coffee_button", ("site", "buttonStart"), ("fixed", ""))
SAFE_HANDLE = Reading("handle", ("mesh", "door_handle"), ("mesh", "door_handle"))


def _single(name: str, level: str, entity: str, extras: tuple[Reading, ...] = ()) -> Task:
    """A task driven by Meta-World's ``<name>-v3`` env and its own expert."""
    policy = "Sawyer" + "".join(word.capitalize() for word in name.split("-")) + "V3Policy"
    return Task(name, level, f"{name}-v3", (entity,), extras, (Expert(policy, (entity,)),))


_TASKS = (
    _single("reach", "train", "target_object"),
    _single("push", "train", "target_object"),
    _single("pick-place", "train", "target_object"),
    _single("button-press", "train", "button"),
    _single("door-unlock", "train", "lock", (SAFE_HANDLE,)),
    _single("door-open", "train", "handle"),
    _single("window-open", "train", "window"),
    _single("faucet-open", "train", "faucet"),
    _single("coffee-push", "train", "target_object", (COFFEE_MACHINE, COFFEE_BUTTON)),
    _single("coffee-button", "train", "coffee_button", (COFFEE_MACHINE, MUG)),
    _single("reach-wall", "easy", "target_object", (WALL,)),
    _single("push-wall", "easy", "target_object", (WALL,)),
    _single("pick-place-wall", "easy", "target_object", (WALL,)),
    _single("button-press-wall", "easy", "button", (WALL,)),
    _single("door-lock", "easy", "lock", (SAFE_HANDLE,)),
    _single("door-close", "easy", "handle"),
    _single("window-close", "easy", "window"),
    _single("faucet-close", "easy", "faucet"),
    Task(
        "hammer",
        "hard",
        "hammer-v3",
        ("hammer", "nail"),
        (),
        (Expert("SawyerHammerV3Policy", ("hammer", "nail")),),
    ),
    _single("soccer", "hard", "soccer_ball"),
    Task(
        "make-coffee",
        "hard",
        "kalm:make-coffee",
        ("target_object", "coffee_button"),
        (COFFEE_MACHINE,),
        (
            Expert("SawyerCoffeePushV3Policy", ("target_object",)),
            Expert("SawyerCoffeeButtonV3Policy", ("coffee_button",)),
        ),
    ),
    Task(
        "locked-door-open",
        "hard",
        "kalm:locked-door-open",
        ("lock", "handle"),
        (),
        (Expert("SawyerDoorUnlockV3Policy", ("lock",)), Expert("SawyerDoorOpenV3Policy", ("handle",))),
    ),
)

TASKS: dict[str, Task] = {task.name: task for task in _TASKS}
"""Every task by name (the goal id)."""


@cache
def task_names(level: str) -> tuple[str, ...]:
    """The task names of ``level`` in a fixed order; ``rephrase`` has the training tasks."""
    check_level(level)
    source = "train" if level == "rephrase" else level
    return tuple(task.name for task in _TASKS if task.level == source)


@cache
def goals(level: str) -> tuple[Goal, ...]:
    """The goals of ``level``: one per task, with the task's 20 sentences of that level."""
    return tuple(Goal(name, level, sentences(level, name)) for name in task_names(level))


def goal(level: str, name: str) -> Goal:
    """The goal ``name`` of ``level``; an unknown one raises an error listing the level's valid goals."""
    for candidate in goals(level):
        if candidate.id == name:
            return candidate
    raise UnknownNameError(f"Meta-World has no {level} goal {name!r}; valid: {', '.join(task_names(level))}")


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name raises an error listing the valid ones."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownNameError(f"unknown Meta-World task {name!r}; valid tasks: {', '.join(TASKS)}") from None


def task_showing(filled: tuple[str, ...]) -> Task:
    """The first task whose scene holds exactly the ``filled`` entities (or the most of them, for a state with
    a distractor); tasks with the same entities share Meta-World's scene file."""
    candidates = [task for task in _TASKS if set(task.entities) <= set(filled)]
    if not candidates:
        raise UnknownNameError(
            f"no Meta-World task's scene holds the entities {', '.join(filled) or '(none)'}"
        )
    return max(candidates, key=lambda task: len(task.entities))


def resting_source(entity: str) -> Task:
    """The first task whose scene holds ``entity``: where a distractor of that kind takes its pose from."""
    for task in _TASKS:
        if entity in task.entities and not task.env.startswith("kalm:"):
            return task
    raise UnknownNameError(f"no Meta-World task holds entity {entity!r}")
