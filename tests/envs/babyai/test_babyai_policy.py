"""The BabyAI bot as behaviour policy, the floors, action agreement and collection."""

from __future__ import annotations

import numpy as np

from kalm.collect import collect_rollouts
from kalm.envs.cases import level_cases
from kalm.rl.evaluation import FloorActor, run_cases

from .conftest import play


def test_the_bot_solves_every_level_without_noise(babyai):
    for level in ("train", "easy", "hard"):
        cases = level_cases(babyai, level, episodes=40, seed=2)
        wins = [
            play(
                babyai,
                level,
                c.goal_id,
                c.seed,
                babyai.behaviour_policy(noise=0.0, rng=np.random.default_rng(0)),
            )["infos"][-1]["success"]
            for c in cases
        ]
        assert np.mean(wins) >= 0.95, level


def test_the_bot_plans_from_any_observation_it_is_given(babyai):
    """Grounding metrics ask one policy for the first action of many unrelated episodes."""
    policy = babyai.behaviour_policy(noise=0.0, rng=np.random.default_rng(0))
    env = babyai.make()
    for case in level_cases(babyai, "train", episodes=20, seed=3):
        observation, _ = env.reset(seed=case.seed, options={"goal": case.goal_id})
        fresh = babyai.behaviour_policy(noise=0.0, rng=np.random.default_rng(0))
        assert policy(observation, case.goal_id) == fresh(observation, case.goal_id)


def test_floors_play_the_same_cases_and_stay_far_below_the_bot(babyai):
    floors = babyai.floor_policies()
    assert set(floors) == {"uniform random", "named object, random action"}
    rates = {}
    for level in ("train", "hard"):
        cases = level_cases(babyai, level, episodes=80, seed=0)
        kinds = [babyai.goal_kind(c.goal_id) for c in cases]
        for name, floor in floors.items():
            outcomes = run_cases(FloorActor(floor), babyai, cases, num_envs=4)
            rates[level, name] = {
                kind: np.mean([o for o, k in zip(outcomes, kinds, strict=True) if k == kind])
                for kind in set(kinds)
            }
    cases = level_cases(babyai, "train", episodes=30, seed=0)
    named = FloorActor(floors["named object, random action"])
    assert run_cases(named, babyai, cases, num_envs=4) == run_cases(named, babyai, cases, num_envs=1)
    assert all(rate < 0.25 for rate in rates["train", "uniform random"].values())
    assert all(rate < 0.1 for rate in rates["hard", "uniform random"].values())
    named_rates, uniform = rates["train", "named object, random action"], rates["train", "uniform random"]
    # knowing the object is enough to go to it (and to open a door: toggle is one action in seven) ...
    assert named_rates["go to"] > 0.5 and named_rates["open"] > 0.5
    # ... but not to carry it next to another one
    assert named_rates["put next"] < 0.25
    assert all(named_rates[kind] >= uniform[kind] for kind in uniform)


def test_action_agreement_criteria(babyai):
    assert babyai.action_agreement(0, 1) == {"same kind": True, "exact": False}
    assert babyai.action_agreement(3, 5) == {"same kind": True, "exact": False}
    assert babyai.action_agreement(2, 2) == {"same kind": True, "exact": True}
    assert babyai.action_agreement(2, 0) == {"same kind": False, "exact": False}


def test_collection_is_seeded_and_mostly_successful(babyai):
    first = collect_rollouts(babyai, episodes=40, seed=5, noise=0.1, random_fraction=0.1, progress=False)
    again = collect_rollouts(babyai, episodes=40, seed=5, noise=0.1, random_fraction=0.1, progress=False)
    assert (
        first.dataset["goal_id"] == again.dataset["goal_id"]
        and first.dataset["actions"] == again.dataset["actions"]
    )
    assert first.summary["success_rate"] >= 0.8
    assert max(first.dataset["length"]) <= babyai.protocol("train").horizon
