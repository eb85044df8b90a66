"""The CLEVR-Robot goal sets per level (reference §5.3).

- ``train``: the 80 relational configurations (ordered pair of distinct balls x 4 directions), 18
  phrasings each.
- ``rephrase``: the same 80 configurations in novel words and styles.
- ``easy``: move one named ball one step in a direction (5 balls x 4 directions).
- ``hard``: two or three relations at once, a left-to-right line-up in a colour order, gathering the
  balls around one ball.
The compound goals are drawn once from a fixed seed and kept only when a witness arrangement of the
balls satisfies them, so every hard goal is achievable.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np

from kalm.envs.clevr import judges, language
from kalm.envs.clevr.physics import NUM_BALLS, SPAWN_HALF_SIZE
from kalm.envs.clevr.specs import RELATION_DIRECTIONS, UNIT, AllOf, Gather, LineUp, Relation, Step
from kalm.envs.goals import Goal, check_level

NUM_ALL_OF = {2: 40, 3: 30}
NUM_LINE_UPS = 12
_HARD_SEED = 20240409  # the paper's arXiv date; any fixed value keeps the hard set stable
_WITNESS_GAP = 0.2


def relations() -> list[Relation]:
    """The 80 training configurations in a fixed order."""
    return [
        Relation(src, dst, direction)
        for src, dst in itertools.permutations(range(NUM_BALLS), 2)
        for direction in RELATION_DIRECTIONS
    ]


@cache
def goals(level: str) -> tuple[Goal, ...]:
    """All goals of ``level``."""
    check_level(level)
    if level == "train":
        return tuple(Goal(r.id, level, language.training_sentences(r)) for r in relations())
    if level == "rephrase":
        return tuple(Goal(r.id, level, language.rephrase_sentences(r)) for r in relations())
    if level == "easy":
        steps = [Step(ball, direction) for ball in range(NUM_BALLS) for direction in RELATION_DIRECTIONS]
        return tuple(Goal(s.id, level, language.step_sentences(s)) for s in steps)
    return tuple(Goal(spec.id, level, language.hard_sentences(spec)) for spec in hard_specs())


@cache
def hard_specs() -> tuple[AllOf | LineUp | Gather, ...]:
    """The compound goals of the hard level, drawn once from a fixed seed."""
    rng = np.random.default_rng(_HARD_SEED)
    specs: list[AllOf | LineUp | Gather] = []
    for size, count in NUM_ALL_OF.items():
        specs.extend(_draw_all_of(rng, size, count))
    canonical = tuple(range(NUM_BALLS))
    orders = [canonical] + [
        tuple(int(b) for b in rng.permutation(NUM_BALLS)) for _ in range(4 * NUM_LINE_UPS)
    ]
    specs.extend(LineUp(order) for order in list(dict.fromkeys(orders))[:NUM_LINE_UPS])
    specs.extend(Gather(center) for center in range(NUM_BALLS))
    return tuple(specs)


def witness(spec: AllOf | LineUp | Gather) -> np.ndarray | None:
    """A 10-d arrangement of the balls that satisfies ``spec``, or ``None`` if none was found."""
    if isinstance(spec, LineUp):
        arrangement = np.zeros((NUM_BALLS, 2))
        arrangement[list(spec.order), 0] = _WITNESS_GAP * (np.arange(NUM_BALLS) - (NUM_BALLS - 1) / 2)
    elif isinstance(spec, Gather):
        angles = np.linspace(0.0, 2 * np.pi, NUM_BALLS - 1, endpoint=False)
        others = [ball for ball in range(NUM_BALLS) if ball != spec.center]
        arrangement = np.zeros((NUM_BALLS, 2))
        arrangement[others] = 0.15 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    else:
        placed = _place_relations(spec.relations)
        if placed is None:
            return None
        arrangement = placed
    observation = arrangement.reshape(-1)
    if not judges.success(spec, observation[None], observation)[0]:
        return None
    return observation


def _draw_all_of(rng: np.random.Generator, size: int, count: int) -> list[AllOf]:
    pool = relations()
    drawn: dict[str, AllOf] = {}
    while len(drawn) < count:
        picks = rng.choice(len(pool), size=size, replace=False)
        spec = AllOf(tuple(pool[int(i)] for i in sorted(picks)))
        if spec.id not in drawn and witness(spec) is not None:
            drawn[spec.id] = spec
    return list(drawn.values())


def _place_relations(relations: tuple[Relation, ...]) -> np.ndarray | None:
    """Place the balls along the relations' forest (each pair once, no cycles), or ``None``."""
    pairs = {frozenset(r.balls) for r in relations}
    if len(pairs) < len(relations):
        return None
    placed: dict[int, np.ndarray] = {relations[0].dst: np.zeros(2)}
    pending = list(relations)
    while pending:
        progress = False
        for relation in list(pending):
            step = _WITNESS_GAP * np.asarray(UNIT[relation.direction])
            if relation.dst in placed and relation.src in placed:
                return None  # a cycle
            if relation.dst in placed:
                placed[relation.src] = placed[relation.dst] + step
            elif relation.src in placed:
                placed[relation.dst] = placed[relation.src] - step
            else:
                continue
            pending.remove(relation)
            progress = True
        if not progress:  # a second tree: start it away from the first
            placed[pending[0].dst] = np.array([0.0, -2.5 * _WITNESS_GAP])
    return _complete(placed)


def _complete(placed: dict[int, np.ndarray]) -> np.ndarray | None:
    """Centre the placed balls, put the others on free spots, check spacing and bounds."""
    centre = np.mean(list(placed.values()), axis=0)
    arrangement = np.full((NUM_BALLS, 2), np.nan)
    for ball, position in placed.items():
        arrangement[ball] = position - centre
    free = [np.array([x, y]) for x in (-0.4, 0.4) for y in (-0.4, 0.4)] + [np.array([0.0, 0.4])]
    for ball in range(NUM_BALLS):
        if ball not in placed:
            arrangement[ball] = max(
                free, key=lambda spot: np.nanmin(np.linalg.norm(arrangement - spot, axis=1))
            )
    distances = np.linalg.norm(arrangement[:, None] - arrangement[None], axis=-1) + np.eye(NUM_BALLS)
    if distances.min() < 0.12 or np.abs(arrangement).max() > SPAWN_HALF_SIZE + 0.1:
        return None
    return arrangement
