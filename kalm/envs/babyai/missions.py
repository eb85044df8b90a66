"""Structured BabyAI missions: what a judge reads. Sentences live in ``language.py``, goal sets in
``goals.py``.

Every mission has a stable text id:

- ``goto-red-ball``: face the red ball (any object, doors too);
- ``pickup-red-ball``: pick the red ball up (balls, boxes, keys);
- ``open-red-door``: open the red door;
- ``putnext-red-ball-blue-key``: put the red ball down next to the blue key;
- ``then(goto-red-ball,pickup-blue-key)``: "go to the red ball, then pick up the blue key";
- ``after(goto-red-ball,pickup-blue-key)``: "go to the red ball after you pick up the blue key" (the second
  clause comes first in time).

``to_instr`` builds the same mission as BabyAI's own verifier (``minigrid.envs.babyai.core.verifier``), which
the environment runs beside kalm's judges and the BabyAI bot reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kalm.errors import UnknownNameError

COLOURS = ("red", "green", "blue", "purple", "yellow", "grey")
"""BabyAI's colours, in minigrid's ``COLOR_TO_IDX`` order."""
PICKABLE = ("ball", "box", "key")
TYPES = (*PICKABLE, "door")


@dataclass(frozen=True)
class Obj:
    """An object by colour and type (the scene holds each combination at most once)."""

    colour: str
    type: str

    @property
    def id(self) -> str:
        return f"{self.colour}-{self.type}"

    @property
    def words(self) -> str:
        return f"{self.colour} {self.type}"


@dataclass(frozen=True)
class GoTo:
    obj: Obj
    kind = "go to"

    @property
    def id(self) -> str:
        return f"goto-{self.obj.id}"


@dataclass(frozen=True)
class PickUp:
    obj: Obj
    kind = "pick up"

    @property
    def id(self) -> str:
        return f"pickup-{self.obj.id}"


@dataclass(frozen=True)
class Open:
    door: Obj
    kind = "open"

    @property
    def id(self) -> str:
        return f"open-{self.door.id}"


@dataclass(frozen=True)
class PutNext:
    move: Obj
    fixed: Obj
    kind = "put next"

    @property
    def id(self) -> str:
        return f"putnext-{self.move.id}-{self.fixed.id}"


Mission = GoTo | PickUp | Open | PutNext


@dataclass(frozen=True)
class Sequence:
    """Two missions in order: ``then`` does ``a`` before ``b``; ``after`` ("a after you b") does ``b``
    first."""

    connective: str
    a: Mission
    b: Mission

    @property
    def kind(self) -> str:
        return self.connective

    @property
    def id(self) -> str:
        return f"{self.connective}({self.a.id},{self.b.id})"

    @property
    def order(self) -> tuple[Mission, Mission]:
        """The two missions in the order they must be done."""
        return (self.a, self.b) if self.connective == "then" else (self.b, self.a)


Spec = Mission | Sequence


def objects(spec: Spec) -> tuple[Obj, ...]:
    """The objects a mission names, in the order it names them (doors included)."""
    if isinstance(spec, Sequence):
        return tuple(dict.fromkeys((*objects(spec.a), *objects(spec.b))))
    if isinstance(spec, PutNext):
        return (spec.move, spec.fixed)
    return (spec.door,) if isinstance(spec, Open) else (spec.obj,)


def parts(spec: Spec) -> tuple[Mission, ...]:
    """The single missions of ``spec`` (itself, or a sequence's two in the order they must be done)."""
    return spec.order if isinstance(spec, Sequence) else (spec,)


def parse_spec(goal_id: str) -> Spec:
    """Parse a mission id; an invalid one raises ``UnknownNameError`` with the grammar."""
    try:
        return _parse(goal_id)
    except (ValueError, IndexError):
        raise UnknownNameError(
            f"BabyAI goal id {goal_id!r} is invalid; expected e.g. 'goto-red-ball', 'pickup-blue-key', "
            "'open-red-door', 'putnext-red-ball-blue-key', 'then(goto-red-ball,open-red-door)' or "
            "'after(goto-red-ball,pickup-blue-key)'"
        ) from None


def _parse(goal_id: str) -> Spec:
    for connective in ("then", "after"):
        if goal_id.startswith(connective + "(") and goal_id.endswith(")"):
            a, b = goal_id[len(connective) + 1 : -1].split(",")
            return Sequence(connective, _mission(a), _mission(b))
    return _mission(goal_id)


def _mission(text: str) -> Mission:
    verb, *words = text.split("-")
    if verb == "putnext" and len(words) == 4:
        move, fixed = _obj(words[:2], PICKABLE), _obj(words[2:], PICKABLE)
        if move == fixed:
            raise ValueError(text)
        return PutNext(move, fixed)
    if len(words) != 2:
        raise ValueError(text)
    if verb == "goto":
        return GoTo(_obj(words, TYPES))
    if verb == "pickup":
        return PickUp(_obj(words, PICKABLE))
    if verb == "open":
        return Open(_obj(words, ("door",)))
    raise ValueError(text)


def _obj(words: list[str], types: tuple[str, ...]) -> Obj:
    colour, type_ = words  # the callers checked the count
    if colour not in COLOURS or type_ not in types:
        raise ValueError(f"{colour}-{type_}")
    return Obj(colour, type_)


def to_instr(spec: Spec) -> Any:
    """The mission as BabyAI's verifier instruction (non-strict clauses; sequences strict about their
    order)."""
    from minigrid.envs.babyai.core.verifier import (
        AfterInstr,
        BeforeInstr,
        GoToInstr,
        ObjDesc,
        OpenInstr,
        PickupInstr,
        PutNextInstr,
    )

    def desc(obj: Obj) -> Any:
        return ObjDesc(obj.type, obj.colour)

    if isinstance(spec, Sequence):
        connective = BeforeInstr if spec.connective == "then" else AfterInstr
        return connective(to_instr(spec.a), to_instr(spec.b), strict=True)
    if isinstance(spec, GoTo):
        return GoToInstr(desc(spec.obj))
    if isinstance(spec, PickUp):
        return PickupInstr(desc(spec.obj))
    if isinstance(spec, Open):
        return OpenInstr(desc(spec.door))
    return PutNextInstr(desc(spec.move), desc(spec.fixed))
