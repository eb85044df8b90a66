"""BabyAI (minigrid 3.2: one 7x7 room, four objects, two doors) as a kalm environment suite: ImagineBench's
third KALM environment (``kalm_reference.md`` §9).

Missions GoTo / PickUp / Open / PutNext on training object-colour combinations, the same in new words, on
held-out combinations, and two-mission sequences ("X, then Y", "X after you Y"); a 35-d symbolic observation
(``scene``), state-only judges and rewards (``judges``), the BabyAI bot as behaviour policy (``policy``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from kalm.data.schema import RolloutSpec
from kalm.envs.babyai import goals as _goals
from kalm.envs.babyai import judges, language
from kalm.envs.babyai.env import BabyAIEnv
from kalm.envs.babyai.missions import COLOURS, TYPES, GoTo, Sequence, objects, parse_spec, to_instr
from kalm.envs.babyai.plausibility import bounds, implausibility, project
from kalm.envs.babyai.policy import BotPolicy, named_object_floor
from kalm.envs.babyai.scene import NUM_ACTIONS, OBS_DIM, BabyAILevel, decode
from kalm.envs.base import EnvSuite, FloorPolicy, LevelProtocol, Policy, normalize_sentence
from kalm.envs.goals import Goal, check_level

_SINGLE = (
    f"success at any of {judges.MISSION_HORIZON} steps (BabyAI's verifier, on states); pick-up and "
    "put-next fail once another object is carried, open once another door is open"
)
PROTOCOLS = {
    "train": LevelProtocol(judges.MISSION_HORIZON, _SINGLE),
    "rephrase": LevelProtocol(judges.MISSION_HORIZON, _SINGLE),
    "easy": LevelProtocol(judges.MISSION_HORIZON, _SINGLE),
    "hard": LevelProtocol(
        judges.SEQUENCE_HORIZON,
        (
            f"ends when the later mission's state is reached, within {judges.SEQUENCE_HORIZON} steps: "
            "success if the earlier one's was reached before (BabyAI's strict sequences), failure otherwise"
        ),
    ),
}
"""The BabyAI protocol: BabyAI's own judges (its verifier; strict where BabyAI has a strict mode) and a
horizon per level. ImagineBench's BabyAI wrapper does not say more; where it is silent, the stricter
choice."""
_ACTION_KINDS = ("turn", "turn", "forward", "interact", "interact", "interact", "done")


class BabyAISuite(EnvSuite):
    """BabyAI: missions per level, state-only judges and rewards, the BabyAI bot with action noise.

    ``behaviour_policy(noise=...)`` reads ``noise`` as the probability of a uniformly random action at a step.
    """

    name = "babyai"
    gym_id = "kalm/BabyAI-v0"
    spec = RolloutSpec(
        obs_dim=OBS_DIM, action_dim=NUM_ACTIONS, discrete=True, horizon=judges.SEQUENCE_HORIZON
    )
    observation_low, observation_high, max_step_change = bounds()
    replay_tolerance = 0.5  # states are integers: any difference is a different cell, object or door state

    def make(self, **kwargs: Any) -> BabyAIEnv:
        return BabyAIEnv(**kwargs)

    def goals(self, level: str) -> tuple[Goal, ...]:
        return _goals.goals(level)

    def protocol(self, level: str) -> LevelProtocol:
        return PROTOCOLS[check_level(level)]

    def success(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations)
        return judges.success(parse_spec(goal_id), observations[1:], observations[0])

    def failure(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations)
        return judges.failure(parse_spec(goal_id), observations[1:], observations[0])

    def rewards(self, goal_id: str, observations: np.ndarray) -> np.ndarray:
        return judges.rewards(parse_spec(goal_id), observations)

    def goal_kind(self, goal_id: str) -> str:
        """The mission kind: ``go to``, ``pick up``, ``open``, ``put next``, ``X, then Y``,
        ``X after you Y``."""
        spec = parse_spec(goal_id)
        if isinstance(spec, Sequence):
            return "X, then Y" if spec.connective == "then" else "X after you Y"
        return spec.kind

    def behaviour_policy(self, *, noise: float, rng: np.random.Generator) -> Policy:
        return BotPolicy(noise=noise, rng=rng)

    def floor_policies(self) -> Mapping[str, FloorPolicy]:
        """Uniformly random actions, and a policy that walks to face an object the mission names and then acts
        at random (it knows the object, not the task)."""
        return {**super().floor_policies(), "named object, random action": named_object_floor}

    def action_agreement(self, predicted: Any, reference: Any) -> dict[str, bool]:
        """The same kind of action (turn, forward, pickup/drop/toggle, done), and the exact action."""
        predicted, reference = int(predicted), int(reference)
        return {
            "same kind": _ACTION_KINDS[predicted] == _ACTION_KINDS[reference],
            "exact": predicted == reference,
        }

    def goal_slots(self, goal_id: str) -> dict[str, str]:
        """The mission's verb (a sequence's connective), and the colour and type of the first object it
        names."""
        spec = parse_spec(goal_id)
        first = objects(spec)[0]
        return {"verb": spec.kind, "colour": first.colour, "object": first.type}

    def read_slots(self, text: str) -> dict[str, str | None]:
        """The slots a description states: the verb and object of the training or rephrase pattern it follows
        exactly; otherwise the verb whose pattern it starts like, and its first colour and object words."""
        words = normalize_sentence(text)
        for pattern, kind in self._patterns:
            match = pattern.fullmatch(words)
            if match:
                colour, noun = match.group("o").split(" ")
                return {"verb": kind, "colour": colour, "object": _NOUNS.get(noun)}
        verb = next((kind for prefix, kind in self._prefixes if words.startswith(prefix)), None)
        colour = next((word for word in re.findall(r"[a-z]+", words) if word in COLOURS), None)
        noun = next((_NOUNS[word] for word in re.findall(r"[a-z]+", words) if word in _NOUNS), None)
        return {"verb": verb, "colour": colour, "object": noun}

    @cached_property
    def _patterns(self) -> list[tuple[re.Pattern[str], str]]:
        compiled = []
        for bank in (language.TRAIN_PATTERNS, language.REPHRASE_PATTERNS):
            for mission_type, patterns in bank.items():
                for pattern in patterns:
                    regex = re.escape(normalize_sentence(pattern))
                    for first, rest in (("o", ()), ("s", ()), ("a", ("b",)), ("sa", ("sb",))):
                        regex = regex.replace(re.escape("{" + first + "}"), r"(?P<o>[a-z]+ [a-z]+)")
                        for field in rest:
                            regex = regex.replace(re.escape("{" + field + "}"), r"[a-z]+ [a-z]+")
                    compiled.append((re.compile(regex), mission_type.kind))
        return compiled

    @cached_property
    def _prefixes(self) -> list[tuple[str, str]]:
        prefixes = {
            normalize_sentence(pattern.split("{")[0]): mission_type.kind
            for bank in (language.TRAIN_PATTERNS, language.REPHRASE_PATTERNS)
            for mission_type, patterns in bank.items()
            for pattern in patterns
        }
        return sorted(prefixes.items(), key=lambda item: -len(item[0]))

    def project_states(self, states: np.ndarray, initial: np.ndarray) -> np.ndarray:
        """Integers (the grid has no fractions), and each slot's type and colour and each door's cell as in
        the initial state (they never change): ``plausibility.project``."""
        return project(states, initial)

    def implausibility(self, observations: np.ndarray) -> str | None:
        """The base checks, then BabyAI's rules: ``plausibility.implausibility``."""
        return super().implausibility(observations) or implausibility(observations)

    def start_options(self, observation: np.ndarray) -> dict[str, Any]:
        return {"observation": np.asarray(observation, dtype=np.float32)}

    def render_observation(
        self, observation: np.ndarray, *, size: int = 160, goal_id: str | None = None
    ) -> np.ndarray:
        """The room an observation shows (imagined states too; every mission has the same kind of scene); a
        grey square for a state that cannot be placed."""
        scene = self.__dict__.setdefault("_render_scene", BabyAILevel())
        try:
            layout = decode(observation)
            scene.load(layout, to_instr(GoTo(layout.things[0].obj)))
            scene.reset()
            return scene.picture(size)
        except (AssertionError, IndexError, ValueError):
            return np.full((size, size, 3), 128, dtype=np.uint8)


_NOUNS = {
    **{type_: type_ for type_ in TYPES},
    **{synonym: type_ for type_, synonym in language.SYNONYMS.items()},
}

__all__ = ["PROTOCOLS", "BabyAIEnv", "BabyAISuite"]
