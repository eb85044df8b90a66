"""Natural-language phrasings of CLEVR-Robot goals, one bank per level.

Training goals use 18 sentence patterns (as in the paper). The novel levels use phrasings the training
data never contains: rephrasings swap words (sphere / orb / globe), direction phrases and styles
(polite, emotional, hurried), following the paper's App. A.2.
"""

from __future__ import annotations

from kalm.envs.clevr.physics import BALL_COLORS
from kalm.envs.clevr.specs import AllOf, Gather, LineUp, Relation, Step

TRAIN_DIRECTION = {
    "behind": "behind",
    "front": "in front of",
    "left": "to the left of",
    "right": "to the right of",
}
REPHRASE_DIRECTION = {
    "behind": "at the back of",
    "front": "at the front of",
    "left": "on the left side of",
    "right": "on the right side of",
}
STEP_DIRECTION = {"behind": "backward", "front": "forward", "left": "to the left", "right": "to the right"}

TRAIN_PATTERNS = (
    "Push the {a} ball {rel} the {b} ball",
    "Move the {a} ball {rel} the {b} ball",
    "Can you push the {a} ball {rel} the {b} ball",
    "Can you move the {a} ball {rel} the {b} ball",
    "Is there any way to push the {a} ball {rel} the {b} ball",
    "Is there any way to move the {a} ball {rel} the {b} ball",
    "Put the {a} ball {rel} the {b} ball",
    "Place the {a} ball {rel} the {b} ball",
    "Get the {a} ball {rel} the {b} ball",
    "Make the {a} ball end up {rel} the {b} ball",
    "The {a} ball should be {rel} the {b} ball",
    "I want the {a} ball {rel} the {b} ball",
    "Keep pushing the {a} ball until it is {rel} the {b} ball",
    "Push the {a} ball so that it sits {rel} the {b} ball",
    "Move the {a} ball until it is {rel} the {b} ball",
    "Bring the {a} ball {rel} the {b} ball",
    "Slide the {a} ball {rel} the {b} ball",
    "Relocate the {a} ball {rel} the {b} ball",
)

REPHRASE_PATTERNS = (
    "Could you kindly nudge the {a} sphere {rel} the {b} sphere?",
    "Please, gently roll the {a} orb {rel} the {b} orb",
    "Swiftly shove the {a} globe {rel} the {b} globe",
    "It would bring me joy to see the {a} sphere {rel} the {b} sphere",
    "I can't stand the {a} orb being anywhere but {rel} the {b} orb",
    "Would you be so kind as to shift the {a} ball {rel} the {b} ball?",
    "Nothing would make me happier than the {a} sphere resting {rel} the {b} one",
    "Quickly, get that {a} orb {rel} the {b} orb!",
    "Your task: reposition the {a} sphere {rel} the {b} sphere",
    "I'd love it if the {a} ball ended up {rel} the {b} ball",
    "Carefully guide the {a} globe {rel} the {b} globe",
    "Help me out and steer the {a} orb {rel} the {b} sphere",
)

STEP_PATTERNS = (
    "Push the {a} ball {d} once",
    "Move the {a} ball one step {d}",
    "Nudge the {a} sphere a little {d}",
    "Give the {a} orb a single push {d}",
    "Shift the {a} ball slightly {d}",
    "Can you move the {a} ball {d} by one step?",
    "Please push the {a} sphere one step {d}",
    "Take one step moving the {a} ball {d}",
    "I want the {a} ball a bit further {d}",
    "Roll the {a} orb {d} just once",
    "Make a single move: the {a} ball goes {d}",
    "Tap the {a} ball so it moves {d}",
    "Could you slide the {a} globe {d} a little?",
    "Just one push {d} for the {a} ball",
)

ALL_OF_PATTERNS = {
    2: (
        "{c0} and {c1}",
        "First {c0}, then {c1}",
        "I need two things: {c0}, and {c1}",
        "Arrange the balls so that {s0} and {s1}",
    ),
    3: (
        "{c0}, {c1}, and {c2}",
        "First {c0}, then {c1}, and finally {c2}",
        "I need three things: {c0}, {c1}, and {c2}",
        "Arrange the balls so that {s0}, {s1} and {s2}",
    ),
}

LINE_UP_PATTERNS = (
    "Line up the balls from left to right: {order}",
    "Arrange the balls in a row, left to right, as {order}",
    "Put the balls in a horizontal line ordered {order} from left to right",
    "Sort the balls left to right in this order: {order}",
    "Can you line the balls up so that, from left to right, they read {order}?",
    "Make a left-to-right line of balls: {order}",
    "Order the spheres from left to right as {order}",
    "Form a line with {order} going from left to right",
)

GATHER_PATTERNS = (
    "Gather all the balls around the {c} ball",
    "Bring every other ball close to the {c} ball",
    "Cluster the balls around the {c} one",
    "Move all the other balls next to the {c} ball",
    "Make the balls circle around the {c} ball",
    "Put every ball near the {c} sphere",
    "Can you group the balls tightly around the {c} ball?",
    "Collect the rest of the balls around the {c} orb",
    "I want all balls huddled around the {c} ball",
    "Surround the {c} ball with the other balls",
)


def training_sentences(relation: Relation) -> tuple[str, ...]:
    """The 18 training phrasings of a relational goal."""
    return _fill(TRAIN_PATTERNS, relation, TRAIN_DIRECTION)


def rephrase_sentences(relation: Relation) -> tuple[str, ...]:
    """Novel phrasings of a training configuration (the rephrase level)."""
    return _fill(REPHRASE_PATTERNS, relation, REPHRASE_DIRECTION)


def step_sentences(step: Step) -> tuple[str, ...]:
    """Phrasings of a one-step goal (the unseen easy level)."""
    return tuple(
        pattern.format(a=BALL_COLORS[step.ball], d=STEP_DIRECTION[step.direction])
        for pattern in STEP_PATTERNS
    )


def hard_sentences(spec: AllOf | LineUp | Gather) -> tuple[str, ...]:
    """Phrasings of a compound goal (the unseen hard level)."""
    if isinstance(spec, AllOf):
        fields = {}
        for index, relation in enumerate(spec.relations):
            fields[f"c{index}"] = _clause(relation, "move the {a} ball {rel} the {b} ball")
            fields[f"s{index}"] = _clause(relation, "the {a} ball is {rel} the {b} ball")
        sentences = [pattern.format(**fields) for pattern in ALL_OF_PATTERNS[len(spec.relations)]]
        return tuple(sentence[0].upper() + sentence[1:] for sentence in sentences)
    if isinstance(spec, LineUp):
        colors = [BALL_COLORS[ball] for ball in spec.order]
        order = ", ".join(colors[:-1]) + " and " + colors[-1]
        return tuple(pattern.format(order=order) for pattern in LINE_UP_PATTERNS)
    return tuple(pattern.format(c=BALL_COLORS[spec.center]) for pattern in GATHER_PATTERNS)


def _clause(relation: Relation, pattern: str) -> str:
    return pattern.format(
        a=BALL_COLORS[relation.src], b=BALL_COLORS[relation.dst], rel=TRAIN_DIRECTION[relation.direction]
    )


def _fill(patterns: tuple[str, ...], relation: Relation, directions: dict[str, str]) -> tuple[str, ...]:
    a, b = BALL_COLORS[relation.src], BALL_COLORS[relation.dst]
    return tuple(pattern.format(a=a, b=b, rel=directions[relation.direction]) for pattern in patterns)
