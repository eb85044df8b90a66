"""Structured CLEVR-Robot goals: what a judge reads. Sentences live in ``language.py``.

Every spec has a stable text id (``red-left-of-blue``, ``step-red-left``, ``all(red-left-of-blue,
green-behind-cyan)``, ``line-red-blue-green-purple-cyan``, ``gather-green``) and the set of balls it
involves (the others should stay put).
"""

from __future__ import annotations

from dataclasses import dataclass

from kalm.envs.clevr.physics import BALL_COLORS, NUM_BALLS
from kalm.errors import UnknownNameError

RELATION_DIRECTIONS = ("behind", "front", "left", "right")
"""The four relational directions: behind = +y, front = -y, left = -x, right = +x."""

UNIT = {"behind": (0.0, 1.0), "front": (0.0, -1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0)}


@dataclass(frozen=True)
class Relation:
    """Move ball ``src`` so that it lies in ``direction`` of ball ``dst`` (training and rephrase levels)."""

    src: int
    dst: int
    direction: str

    @property
    def id(self) -> str:
        return f"{BALL_COLORS[self.src]}-{self.direction}-of-{BALL_COLORS[self.dst]}"

    @property
    def balls(self) -> frozenset[int]:
        return frozenset((self.src, self.dst))


@dataclass(frozen=True)
class Step:
    """Move ball ``ball`` one step in ``direction`` from where it started (unseen easy level)."""

    ball: int
    direction: str

    @property
    def id(self) -> str:
        return f"step-{BALL_COLORS[self.ball]}-{self.direction}"

    @property
    def balls(self) -> frozenset[int]:
        return frozenset((self.ball,))


@dataclass(frozen=True)
class AllOf:
    """Satisfy two or three relations at once (unseen hard level)."""

    relations: tuple[Relation, ...]

    @property
    def id(self) -> str:
        return "all(" + ",".join(relation.id for relation in self.relations) + ")"

    @property
    def balls(self) -> frozenset[int]:
        return frozenset().union(*(relation.balls for relation in self.relations))


@dataclass(frozen=True)
class LineUp:
    """Line the balls up from left to right in the colour order ``order`` (unseen hard level)."""

    order: tuple[int, ...]

    @property
    def id(self) -> str:
        return "line-" + "-".join(BALL_COLORS[ball] for ball in self.order)

    @property
    def balls(self) -> frozenset[int]:
        return frozenset(self.order)


@dataclass(frozen=True)
class Gather:
    """Gather every other ball around ball ``center`` (unseen hard level)."""

    center: int

    @property
    def id(self) -> str:
        return f"gather-{BALL_COLORS[self.center]}"

    @property
    def balls(self) -> frozenset[int]:
        return frozenset(range(NUM_BALLS))


GoalSpec = Relation | Step | AllOf | LineUp | Gather


def parse_spec(goal_id: str) -> GoalSpec:
    """Parse a goal id back into its spec; an invalid id raises ``UnknownNameError`` with the grammar."""
    try:
        return _parse(goal_id)
    except (ValueError, KeyError, IndexError):
        raise UnknownNameError(
            f"CLEVR-Robot goal id {goal_id!r} is invalid; expected e.g. 'red-left-of-blue', 'step-red-left', "
            "'all(red-left-of-blue,green-behind-cyan)', 'line-red-blue-green-purple-cyan' or 'gather-green'"
        ) from None


def _ball(color: str) -> int:
    return BALL_COLORS.index(color)


def _direction(word: str) -> str:
    if word not in RELATION_DIRECTIONS:
        raise ValueError(word)
    return word


def _parse(goal_id: str) -> GoalSpec:
    if goal_id.startswith("all(") and goal_id.endswith(")"):
        relations = tuple(_parse_relation(part) for part in goal_id[4:-1].split(","))
        if not 2 <= len(relations) <= 3:
            raise ValueError(goal_id)
        return AllOf(relations)
    parts = goal_id.split("-")
    if parts[0] == "step" and len(parts) == 3:
        return Step(_ball(parts[1]), _direction(parts[2]))
    if parts[0] == "line" and len(parts) == 1 + NUM_BALLS and len(set(parts[1:])) == NUM_BALLS:
        return LineUp(tuple(_ball(color) for color in parts[1:]))
    if parts[0] == "gather" and len(parts) == 2:
        return Gather(_ball(parts[1]))
    return _parse_relation(goal_id)


def _parse_relation(text: str) -> Relation:
    src, direction, of, dst = text.split("-")
    if of != "of" or src == dst:
        raise ValueError(text)
    return Relation(_ball(src), _ball(dst), _direction(direction))
