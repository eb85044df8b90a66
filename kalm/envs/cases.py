"""Seeded cases of a goal level: which goal each episode follows and the reset seed that places its scene.

:func:`level_cases` is the one place cases are drawn, with two schemes:

- ``cycled`` (policy evaluation and its floors, grounding metrics): the level's goals in cycles, each cycle a
  shuffled order of all of them, so every goal is used about equally often; within a cycle, the goals of each
  kind (``EnvSuite.goal_kind``) are spread evenly, so any prefix of the cases covers the kinds in proportion
  to their sizes (a short list still reaches every kind). Asking for more cases extends the same list.
- ``per_goal`` (imagination's work plan, ``kalm.imagine.plan``): a fixed number of cases for every goal in
  order, phrased with the goal's prompt sentences in turn and reset from ``(seed, stream, goal, k)``. Kept
  apart from ``cycled`` because published imaginary datasets were drawn with it.

Novel-goal sentences are split in two (``prompt_sentences`` / ``held_out_sentences``): imagination prompts
the grounded LM with the first half only, and ``phrasings="held_out"`` cases show a policy a sentence of the
second half, so a gain there cannot come from imagining with the very sentence evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kalm.envs.base import EnvSuite
from kalm.envs.goals import LEVELS, Goal, check_level
from kalm.errors import ConfigError


UNSEEN_PHRASINGS = "rephrase (unseen phrasings)"
"""The report column of rephrase goals said in sentences imagination never saw."""
_SENTENCE_STREAM = 11


@dataclass(frozen=True)
class EvalCase:
    """One episode: a goal of ``level``, the environment's reset seed, and the sentence the policy is given
    (``None``: the one the environment draws at reset)."""

    level: str
    goal_id: str
    seed: int
    sentence: str | None = None


def prompt_sentences(goal: Goal) -> tuple[str, ...]:
    """The sentences of a novel goal that imagination may prompt with: every other one, from the first."""
    return goal.sentences[0::2] if goal.level != "train" and len(goal.sentences) > 1 else goal.sentences


def held_out_sentences(goal: Goal) -> tuple[str, ...]:
    """The sentences of a novel goal imagination never prompts with (empty for training goals)."""
    return goal.sentences[1::2] if goal.level != "train" else ()


def level_cases(
    suite: EnvSuite,
    level: str,
    *,
    episodes: int,
    seed: int = 0,
    goals: Sequence[str] | None = None,
    phrasings: str = "any",
    scheme: str = "cycled",
    stream: int | None = None,
) -> list[EvalCase]:
    """The deterministic cases of ``level`` (see the module docstring).

    Args:
        suite: the environment suite.
        level: goal level.
        episodes: number of cases (``per_goal``: cases per goal, which may be 0).
        seed: base seed; the same ``(seed, level, episodes)`` always gives the same cases.
        goals: restrict to these goal ids of the level (all when ``None``; ``cycled`` only).
        phrasings: ``any``: the environment draws the sentence; ``held_out``: a sentence imagination never saw
            (``held_out_sentences``), drawn from the case's seed. The same goals and resets either way
            (``cycled`` only: ``per_goal`` cases carry a prompt sentence).
        scheme: ``cycled`` or ``per_goal`` (see the module docstring).
        stream: ``per_goal``: the seed stream of the level (imagination passes the level's position in the
            levels it imagines; default its index in ``LEVELS``).
    """
    if scheme == "per_goal":
        return _per_goal_cases(suite, check_level(level), per_goal=episodes, seed=seed, stream=stream)
    if scheme != "cycled":
        raise ConfigError(f"scheme={scheme!r}; expected 'cycled' or 'per_goal'")
    if phrasings not in ("any", "held_out"):
        raise ConfigError(f"phrasings={phrasings!r}; expected 'any' or 'held_out'")
    if episodes < 1:
        raise ConfigError(f"episodes={episodes!r} is invalid; expected a positive integer")
    ids = (
        [goal.id for goal in suite.goals(check_level(level))]
        if goals is None
        else [suite.goal(level, goal_id).id for goal_id in goals]
    )
    kinds = [suite.goal_kind(goal_id) for goal_id in ids]
    goal_rng, seed_rng = (np.random.default_rng([seed, LEVELS.index(level), stream]) for stream in (0, 1))
    order = np.concatenate([_spread_cycle(kinds, goal_rng) for _ in range(math.ceil(episodes / len(ids)))])
    seeds = seed_rng.integers(2**31, size=episodes)  # two streams: more episodes extend the same list
    cases = [EvalCase(level, ids[int(i)], int(s)) for i, s in zip(order[:episodes], seeds, strict=True)]
    if phrasings == "any":
        return cases
    return [
        EvalCase(case.level, case.goal_id, case.seed, _held_out(suite.goal(level, case.goal_id), case.seed))
        for case in cases
    ]


def _per_goal_cases(
    suite: EnvSuite, level: str, *, per_goal: int, seed: int, stream: int | None
) -> list[EvalCase]:
    """``per_goal`` cases for every goal of ``level`` in order; the ``k``-th of a goal says its ``k``-th
    prompt sentence (cycling) and resets from ``(seed, stream, goal index, k)``."""
    stream = LEVELS.index(level) if stream is None else stream
    cases = []
    for goal_index, goal in enumerate(suite.goals(level)):
        sentences = prompt_sentences(goal)
        for k in range(per_goal):
            reset = int(np.random.default_rng([seed, stream, goal_index, k]).integers(2**31))
            cases.append(EvalCase(level, goal.id, reset, sentences[k % len(sentences)]))
    return cases


def _held_out(goal: Goal, seed: int) -> str:
    sentences = held_out_sentences(goal)
    if not sentences:
        raise ConfigError(f"goal {goal.id!r} ({goal.level}) has no sentences held out of imagination")
    return sentences[int(np.random.default_rng([seed, _SENTENCE_STREAM]).integers(len(sentences)))]


def _spread_cycle(kinds: list[str], rng: np.random.Generator) -> np.ndarray:
    """A shuffled order of all goal indices in which each kind's goals are evenly spaced (systematic sampling:
    the ``r``-th of a kind's ``n`` goals sits at ``(r + offset) / n`` of the cycle, ties broken at random)."""
    keys = np.empty(len(kinds))
    for kind in dict.fromkeys(kinds):
        members = np.flatnonzero(np.asarray(kinds) == kind)
        keys[rng.permutation(members)] = (np.arange(len(members)) + rng.random()) / len(members)
    return np.lexsort((rng.random(len(kinds)), keys))
