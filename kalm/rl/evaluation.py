"""Success rate per goal level in the real environment: fixed cases, floors, honest intervals.

For each level, :func:`evaluation_cases` draws a deterministic list of ``(goal, reset seed)`` cases from
``(seed, level)`` (``kalm.envs.cases``: every goal about equally often, every kind of goal covered); asking
for more episodes extends the same list. Episodes run under the level's protocol (``EnvSuite.protocol``: its
horizon, its judge) with the suite's evaluation options (``EnvSuite.evaluation_options``).

Anything that acts is an :class:`Actor`: a trained policy network (it sees the environment's own
instruction, ``info["instruction"]``, encoded by the goal encoder it was trained with), or one of the
suite's floor policies (``EnvSuite.floor_policies``: trivial policies a learned one must beat, run on
exactly the same cases). Episodes run in lockstep over ``num_envs`` environments with one batched
action per step.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from kalm.envs import LEVELS, get_suite
from kalm.envs.base import EnvSuite, FloorPolicy
from kalm.envs.cases import UNSEEN_PHRASINGS, EvalCase, level_cases
from kalm.rl.goal_encoder import GoalEncoder
from kalm.rl.networks import Policy
from kalm.rl.policy import act
from kalm.rl.stats import bootstrap_interval, wilson_interval

log = logging.getLogger(__name__)
_FLOOR_STREAM = 7  # a floor's per-episode generator: (case seed, this), apart from the reset's own stream


@dataclass(frozen=True)
class LevelResult:
    """Success counts of one level with the rate and its 95 % interval.

    ``outcomes[i]`` is the episode of goal ``goal_ids[i]`` in case set ``groups[i]`` (a training seed's
    cases); ``interval`` names how ``ci_low``/``ci_high`` were computed: ``wilson`` (independent episodes of
    one policy) or ``bootstrap`` (over the groups and the cases within them, see ``kalm.rl.stats``).
    """

    level: str
    episodes: int
    successes: int
    rate: float
    ci_low: float
    ci_high: float
    outcomes: tuple[bool, ...] = field(repr=False, default=())
    goal_ids: tuple[str, ...] = field(repr=False, default=())
    groups: tuple[int, ...] = field(repr=False, default=())
    interval: str = "wilson"


class Actor(Protocol):
    """Chooses actions for the episodes running in lockstep: ``begin`` is called when episode ``index``
    starts, ``act`` with the indices of the running episodes and their observations ``[n, obs_dim]``."""

    def begin(self, index: int, case: EvalCase, instruction: str) -> None: ...

    def act(self, indices: Sequence[int], observations: np.ndarray) -> Sequence[Any]: ...


class PolicyActor:
    """A trained goal-conditioned policy network: one batched forward for all running episodes."""

    def __init__(self, policy: Policy, encoder: GoalEncoder) -> None:
        self.policy, self.encoder = policy, encoder
        self._goals: dict[int, np.ndarray] = {}

    def begin(self, index: int, case: EvalCase, instruction: str) -> None:
        self._goals[index] = self.encoder.encode([instruction])[0]

    def act(self, indices: Sequence[int], observations: np.ndarray) -> Sequence[Any]:
        states = torch.as_tensor(observations, dtype=torch.float32)
        goals = torch.as_tensor(np.stack([self._goals[index] for index in indices]))
        actions = act(self.policy, states, goals).cpu().numpy()
        return [int(a) for a in actions] if self.policy.spec.discrete else list(actions.astype(np.float32))


class FloorActor:
    """A floor policy (``EnvSuite.floor_policies``); each episode's randomness comes from its case's seed, so
    its outcomes are a fixed function of the cases."""

    def __init__(self, floor: FloorPolicy) -> None:
        self.floor = floor
        self._episodes: dict[int, tuple[Any, str]] = {}

    def begin(self, index: int, case: EvalCase, instruction: str) -> None:
        self._episodes[index] = (self.floor(np.random.default_rng([case.seed, _FLOOR_STREAM])), case.goal_id)

    def act(self, indices: Sequence[int], observations: np.ndarray) -> Sequence[Any]:
        return [
            self._episodes[i][0](observation, self._episodes[i][1])
            for i, observation in zip(indices, observations, strict=True)
        ]


def evaluation_cases(
    suite: EnvSuite, level: str, *, episodes: int, seed: int = 0, goals: Sequence[str] | None = None
) -> list[EvalCase]:
    """The deterministic evaluation cases of ``level``: ``kalm.envs.cases.level_cases``."""
    return level_cases(suite, level, episodes=episodes, seed=seed, goals=goals)


def column_cases(
    suite: EnvSuite, column: str, *, episodes: int, seed: int = 0, goals: Sequence[str] | None = None
) -> list[EvalCase]:
    """The cases of a report column: a level, or ``UNSEEN_PHRASINGS`` (rephrase goals in held-out
    sentences)."""
    if column == UNSEEN_PHRASINGS:
        return level_cases(suite, "rephrase", episodes=episodes, seed=seed, goals=goals, phrasings="held_out")
    return evaluation_cases(suite, column, episodes=episodes, seed=seed, goals=goals)


def run_cases(
    actor: Actor, suite: EnvSuite, cases: Sequence[EvalCase], *, num_envs: int = 8, progress: bool = False
) -> list[bool]:
    """Roll ``actor`` out on every case; whether each episode reached its goal, in case order."""
    envs = [suite.make() for _ in range(max(1, min(num_envs, len(cases))))]
    results: list[bool | None] = [None] * len(cases)
    running: list[dict[str, Any] | None] = [None] * len(envs)
    queue = iter(range(len(cases)))
    bar = tqdm(
        total=len(cases),
        desc=f"evaluate {cases[0].level if cases else ''}",
        unit="ep",
        disable=not progress or None,
    )
    for slot, env in enumerate(envs):
        running[slot] = _start(env, suite, cases, queue, actor)
    while any(running):
        active = [slot for slot, episode in enumerate(running) if episode is not None]
        episodes = [running[slot] for slot in active]
        actions = actor.act([e["case"] for e in episodes], np.stack([e["observation"] for e in episodes]))  # type: ignore[index]
        for slot, episode, action in zip(active, episodes, actions, strict=True):
            assert episode is not None
            observation, _, terminated, truncated, info = envs[slot].step(action)
            episode["observation"] = observation
            if terminated or truncated:
                results[episode["case"]] = bool(info["success"])
                bar.update(1)
                running[slot] = _start(envs[slot], suite, cases, queue, actor)
    bar.close()
    for env in envs:
        env.close()
    return [bool(result) for result in results]


def _start(
    env: Any, suite: EnvSuite, cases: Sequence[EvalCase], queue: Any, actor: Actor
) -> dict[str, Any] | None:
    index = next(queue, None)
    if index is None:
        return None
    case = cases[index]
    options = {"goal": case.goal_id, "level": case.level, **suite.evaluation_options(case.level)}
    observation, info = env.reset(seed=case.seed, options=options)
    actor.begin(index, case, case.sentence or info["instruction"])
    return {"case": index, "observation": observation}


def evaluate_actor(
    actor: Actor,
    suite: EnvSuite,
    *,
    levels: Sequence[str] = LEVELS,
    episodes: int = 100,
    seeds: Sequence[int] = (0,),
    num_envs: int = 8,
    goals: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, LevelResult]:
    """``actor``'s success rate per level over the cases of every seed in ``seeds`` (``episodes`` each).

    ``levels`` may name ``kalm.envs.cases.UNSEEN_PHRASINGS``: the rephrase cases said in held-out sentences.
    """
    results = {}
    for level in levels:
        cases = [
            case
            for seed in seeds
            for case in column_cases(suite, level, episodes=episodes, seed=seed, goals=goals)
        ]
        outcomes = run_cases(actor, suite, cases, num_envs=num_envs, progress=progress)
        groups = [seed for seed in seeds for _ in range(episodes)]
        results[level] = level_result(level, outcomes, [case.goal_id for case in cases], groups)
        log.info("%s: %d/%d successes", level, sum(outcomes), len(outcomes))
    return results


def evaluate_floors(suite: EnvSuite, **kwargs: Any) -> dict[str, dict[str, LevelResult]]:
    """Every floor policy of ``suite`` on the cases ``evaluate_actor`` draws from ``kwargs``, by name. A floor
    is one fixed policy, so its episodes over all seeds' cases are independent: Wilson intervals."""
    floors = {}
    for name, floor in suite.floor_policies().items():
        results = evaluate_actor(FloorActor(floor), suite, **kwargs)
        floors[name] = {
            level: level_result(level, r.outcomes, r.goal_ids, r.groups, interval="wilson")
            for level, r in results.items()
        }
    return floors


def evaluate_policy(
    policy: Policy,
    suite: EnvSuite | str,
    encoder: GoalEncoder,
    *,
    levels: Sequence[str] = LEVELS,
    episodes: int = 100,
    seed: int = 0,
    num_envs: int = 8,
    goals: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, LevelResult]:
    """Success rate of ``policy`` per level on the cases of ``seed`` (see the module docstring).

    Returns:
        level -> :class:`LevelResult`, in the order of ``levels``.
    """
    suite = get_suite(suite) if isinstance(suite, str) else suite
    _prefetch_sentences(suite, levels, encoder, goals)
    return evaluate_actor(
        PolicyActor(policy, encoder),
        suite,
        levels=levels,
        episodes=episodes,
        seeds=[seed],
        num_envs=num_envs,
        goals=goals,
        progress=progress,
    )


def level_result(
    level: str,
    outcomes: Sequence[bool],
    goal_ids: Sequence[str] = (),
    groups: Sequence[int] | None = None,
    *,
    interval: str | None = None,
) -> LevelResult:
    """The rate of a level's episode outcomes with its interval: ``wilson`` for one policy on independent
    cases, ``bootstrap`` over ``groups`` (training seeds, each with its own cases) and the cases within them.
    By default the bootstrap when ``groups`` holds several, else Wilson."""
    flags = tuple(bool(outcome) for outcome in outcomes)
    groups = tuple(groups) if groups is not None else (0,) * len(flags)
    interval = interval or ("bootstrap" if len(set(groups)) > 1 else "wilson")
    successes = sum(flags)
    if interval == "bootstrap":
        low, high = bootstrap_interval(flags, groups)
    else:
        low, high = wilson_interval(successes, len(flags))
    return LevelResult(
        level,
        len(flags),
        successes,
        successes / max(1, len(flags)),
        low,
        high,
        flags,
        tuple(goal_ids),
        groups,
        interval,
    )


def pool(runs: Sequence[dict[str, LevelResult]]) -> dict[str, LevelResult]:
    """The results of several policies (e.g. training seeds, each evaluated on its own cases), as one."""
    return {
        level: level_result(
            level,
            [o for run in runs for o in run[level].outcomes],
            [g for run in runs for g in run[level].goal_ids],
            [group for run in runs for group in run[level].groups],
        )
        for level in runs[0]
    }


def _prefetch_sentences(
    suite: EnvSuite, levels: Sequence[str], encoder: GoalEncoder, goals: Sequence[str] | None
) -> None:
    """Encode every sentence the environment may show in one batch (cached), not one reset at a time."""
    shown = dict.fromkeys("rephrase" if level == UNSEEN_PHRASINGS else level for level in levels)
    encoder.encode(
        [
            s
            for level in shown
            for goal in suite.goals(level)
            if goals is None or goal.id in goals
            for s in goal.sentences
        ]
    )


def result_dict(result: LevelResult) -> dict[str, Any]:
    """A JSON-ready dict of a level result (outcomes as 0/1)."""
    data = asdict(result)
    data["outcomes"] = [int(o) for o in result.outcomes]
    data["goal_ids"], data["groups"] = list(result.goal_ids), list(result.groups)
    return data
