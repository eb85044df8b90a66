"""The reference's CLEVR-Robot protocol: one push for easy goals, failure when an uninvolved ball moves away,
first terminal state ends a rollout, floors, strict explanations, cases covering every kind of goal."""

from collections import Counter

import numpy as np
import pytest

from kalm.envs.cases import level_cases
from kalm.envs.clevr import judges
from kalm.envs.clevr.env import ClevrRobotEnv
from kalm.envs.clevr.physics import action_index
from kalm.envs.clevr.specs import parse_spec
from kalm.rl.evaluation import FloorActor, evaluate_actor

# red, blue, green, purple, cyan well apart; red not yet left of blue
SPREAD = np.array([[0.3, 0.0], [0.0, 0.0], [-0.3, -0.3], [0.3, -0.3], [-0.3, 0.3]])


def test_easy_goals_get_one_push_and_uniform_random_succeeds_near_the_references_7_5_percent(clevr):
    floor = clevr.floor_policies()["uniform random"]
    results = evaluate_actor(FloorActor(floor), clevr, levels=["easy"], episodes=2000, seeds=[0])["easy"]
    assert results.episodes == 2000
    assert 0.05 <= results.rate <= 0.10  # the reference's step_level_a: 3 of 40 actions, 7.5 %
    env = clevr.make()
    case = level_cases(clevr, "easy", episodes=1)[0]
    env.reset(seed=case.seed, options={"goal": case.goal_id, "level": "easy"})
    _, _, terminated, truncated, _ = env.step(0)
    assert terminated or truncated  # the episode ends after one push, whatever it did
    assert clevr.protocol("easy").horizon == 1 and clevr.protocol("train").horizon == 50


def test_pushing_an_uninvolved_ball_away_ends_the_episode_as_a_failure():
    env = ClevrRobotEnv()
    env.reset(options={"goal": "red-left-of-blue", "positions": SPREAD})
    push_green_right = action_index(2, 0)
    _, reward, terminated, _, info = env.step(push_green_right)
    assert not terminated  # ~0.13 from its start: disturbed, not yet failed
    _, reward, terminated, truncated, info = env.step(push_green_right)
    assert terminated and info["failure"] and not info["success"] and not truncated
    assert reward < -judges.FAILURE_PENALTY + 1


def test_a_rollout_ends_at_its_first_success_or_failure(clevr):
    start = SPREAD.reshape(-1)
    fail = start.copy()
    fail[4] -= 0.3  # green (uninvolved) pushed away
    win = start.copy()
    win[0] = -0.25  # red left of blue
    outcome = clevr.outcome("red-left-of-blue", "train", np.stack([start, start, fail, win]))
    assert (outcome.length, outcome.success, outcome.failure) == (2, False, True)
    outcome = clevr.outcome("red-left-of-blue", "train", np.stack([start, win, fail]))
    assert (outcome.length, outcome.success, outcome.failure) == (1, True, False)
    outcome = clevr.outcome("step-red-left", "easy", np.stack([start, start, win]))
    assert (outcome.length, outcome.success) == (1, False)  # judged on the one push only
    assert judges.failure(parse_spec("gather-green"), fail[None], start).tolist() == [False]  # involves all


def test_floors_see_the_goal_colours_only(clevr, rng):
    named = clevr.floor_policies()["named ball, random direction"](rng)
    assert {named(SPREAD.reshape(-1), "red-left-of-blue") // 8 for _ in range(50)} == {0}
    assert {
        named(SPREAD.reshape(-1), "all(red-left-of-blue,cyan-behind-of-green)") // 8 for _ in range(80)
    } == {0, 4}
    assert len({named(SPREAD.reshape(-1), "step-blue-left") % 8 for _ in range(80)}) == 8


def test_the_strict_interpreter_reads_training_sentences_only(clevr):
    for goal in clevr.goals("train"):
        for sentence in goal.sentences:
            assert clevr.interpret(sentence) == goal.id
            assert clevr.interpret(f"  {sentence.lower()}. ") == goal.id
    for text in (
        "Can you push the cyan ball to the left of the cyan ball",
        "Push the red ball",
        "",
        "Push the red ball to the left of the blue bal",
        clevr.goal("rephrase", "red-left-of-blue").sentences[0],
    ):
        assert clevr.interpret(text) is None
    assert clevr.read_slots("Can you push the cyan ball to the left of the cyan ball") == {
        "source ball": "cyan",
        "reference ball": None,
        "direction": "left",
    }
    assert clevr.goal_slots("green-behind-of-red") == {
        "source ball": "green",
        "reference ball": "red",
        "direction": "behind",
    }


@pytest.mark.parametrize("count", [18, 24, 32, 87])
def test_short_case_lists_cover_every_hard_kind_in_proportion(clevr, count):
    kinds = Counter(clevr.goal_kind(goal.id) for goal in clevr.goals("hard"))
    assert set(kinds) == {"2 relations", "3 relations", "line-up", "gather"}
    for seed in range(4):
        drawn = Counter(
            clevr.goal_kind(case.goal_id) for case in level_cases(clevr, "hard", episodes=count, seed=seed)
        )
        for kind, size in kinds.items():  # systematic sampling: within 2 of the proportional count, never 0
            assert drawn[kind] >= 1 and abs(drawn[kind] - count * size / len(clevr.goals("hard"))) <= 2


def test_unseen_phrasing_cases_are_the_rephrase_cases_in_sentences_imagination_never_used(clevr):
    from kalm.envs.cases import held_out_sentences, prompt_sentences
    from kalm.imagine.plan import plan_items

    plain = level_cases(clevr, "rephrase", episodes=40, seed=2)
    unseen = level_cases(clevr, "rephrase", episodes=40, seed=2, phrasings="held_out")
    assert [(c.goal_id, c.seed) for c in unseen] == [(c.goal_id, c.seed) for c in plain]
    prompted = {item.sentence for item in plan_items(clevr, ["rephrase"], per_goal=12, seed=0)}
    for case in unseen:
        goal = clevr.goal("rephrase", case.goal_id)
        assert case.sentence in held_out_sentences(goal) and case.sentence not in prompted
    assert prompted == {s for goal in clevr.goals("rephrase") for s in prompt_sentences(goal)}
    assert all(
        set(prompt_sentences(g)).isdisjoint(held_out_sentences(g)) and held_out_sentences(g)
        for g in clevr.goals("rephrase")
    )
