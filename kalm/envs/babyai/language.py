"""Natural-language phrasings of BabyAI missions, one bank per level.

Training and unseen-easy missions use BabyAI's own surface form (first pattern of each kind) and plain
variants of it. The rephrase level says the training missions in words and styles the training data never
uses (polite, hurried, indirect; "sphere", "crate", "doorway"). Unseen-hard sequences join two missions in
BabyAI's grammar: "X, then Y" and "X after you Y".
"""

from __future__ import annotations

from kalm.envs.babyai.missions import GoTo, Mission, Obj, Open, PickUp, PutNext, Sequence

TRAIN_PATTERNS: dict[type[Mission], tuple[str, ...]] = {
    GoTo: (
        "go to the {o}",
        "walk to the {o}",
        "move to the {o}",
        "head to the {o}",
        "get to the {o}",
        "go over to the {o}",
        "face the {o}",
        "go up to the {o}",
    ),
    PickUp: (
        "pick up the {o}",
        "grab the {o}",
        "take the {o}",
        "lift the {o}",
        "pick the {o} up",
        "get the {o}",
        "collect the {o}",
        "take hold of the {o}",
    ),
    Open: (
        "open the {o}",
        "swing the {o} open",
        "pull the {o} open",
        "push the {o} open",
        "get the {o} open",
        "unclose the {o}",
        "make the {o} open",
        "toggle the {o} open",
    ),
    PutNext: (
        "put the {a} next to the {b}",
        "place the {a} next to the {b}",
        "move the {a} next to the {b}",
        "drop the {a} next to the {b}",
        "put the {a} beside the {b}",
        "set the {a} down beside the {b}",
        "bring the {a} next to the {b}",
        "carry the {a} over to the {b}",
    ),
}

REPHRASE_PATTERNS: dict[type[Mission], tuple[str, ...]] = {
    GoTo: (
        "Could you please make your way over to the {s}?",
        "I'd like you to stand facing the {o}",
        "Hurry over to the {s}!",
        "Navigate until the {o} is right in front of you",
        "Approach the {s}, please",
        "Your task: find the {o} and look straight at it",
    ),
    PickUp: (
        "Could you please lift up the {s}?",
        "Snatch the {o}!",
        "I need you to be holding the {s}",
        "Go and grab hold of the {o}, would you?",
        "Please take the {s} into your hands",
        "Your task: get your hands on the {o}",
    ),
    Open: (
        "Could you please unlatch the {s}?",
        "Throw the {o} open!",
        "I'd like the {s} opened",
        "Please crack the {o} open",
        "Your task: make sure the {s} stands open",
        "Would you kindly let the {o} swing wide?",
    ),
    PutNext: (
        "Could you carry the {sa} over and leave it beside the {sb}?",
        "I want the {a} sitting right by the {b}",
        "Drop off the {sa} alongside the {sb}, please",
        "Quickly, set the {a} down adjacent to the {b}!",
        "Your task: move the {sa} so it rests against the {sb}",
        "Take the {a} and park it by the {b}",
    ),
}

SYNONYMS = {"ball": "sphere", "box": "crate", "key": "key", "door": "doorway"}

THEN_PATTERNS = ("{a}, then {b}", "first {a}, then {b}", "{a} and then {b}", "{a}; once that is done, {b}")
AFTER_PATTERNS = (
    "{a} after you {b}",
    "{a}, but only after you {b}",
    "{a} once you {b}",
    "after you {b}, {a}",
)


def training_sentences(mission: Mission) -> tuple[str, ...]:
    """The training phrasings of a single mission (the unseen-easy level uses them too)."""
    return _fill(TRAIN_PATTERNS[type(mission)], mission)


def rephrase_sentences(mission: Mission) -> tuple[str, ...]:
    """Novel phrasings of a training mission (the rephrase level)."""
    return _fill(REPHRASE_PATTERNS[type(mission)], mission)


def sequence_sentences(spec: Sequence) -> tuple[str, ...]:
    """Phrasings of a sequence (the unseen-hard level): its clauses in BabyAI's surface form."""
    patterns = THEN_PATTERNS if spec.connective == "then" else AFTER_PATTERNS
    a, b = clause(spec.a), clause(spec.b)
    return tuple(pattern.format(a=a, b=b) for pattern in patterns)


def clause(mission: Mission) -> str:
    """BabyAI's surface form of a single mission, e.g. ``put the red ball next to the blue key``."""
    return _fill(TRAIN_PATTERNS[type(mission)][:1], mission)[0]


def _fill(patterns: tuple[str, ...], mission: Mission) -> tuple[str, ...]:
    if isinstance(mission, PutNext):
        fields = {
            "a": mission.move.words,
            "b": mission.fixed.words,
            "sa": _synonym(mission.move),
            "sb": _synonym(mission.fixed),
        }
    else:
        obj = mission.door if isinstance(mission, Open) else mission.obj
        fields = {"o": obj.words, "s": _synonym(obj)}
    return tuple(pattern.format(**fields) for pattern in patterns)


def _synonym(obj: Obj) -> str:
    return f"{obj.colour} {SYNONYMS[obj.type]}"
