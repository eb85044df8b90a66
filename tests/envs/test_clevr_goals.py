import numpy as np
import pytest

from kalm.envs.clevr import goals
from kalm.envs.clevr.physics import BALL_COLORS, SPAWN_HALF_SIZE
from kalm.envs.clevr.specs import AllOf, parse_spec
from kalm.envs.goals import LEVELS, NOVEL_LEVELS
from kalm.errors import UnknownNameError


def sentences(level):
    return [sentence for goal in goals.goals(level) for sentence in goal.sentences]


def test_goal_counts_per_level():
    assert len(goals.goals("train")) == 80
    assert all(len(goal.sentences) == 18 for goal in goals.goals("train"))
    assert {goal.id for goal in goals.goals("rephrase")} == {goal.id for goal in goals.goals("train")}
    assert len(goals.goals("easy")) == 20
    hard = [parse_spec(goal.id) for goal in goals.goals("hard")]
    sizes = [len(spec.relations) for spec in hard if isinstance(spec, AllOf)]
    assert sizes.count(2) == 40 and sizes.count(3) == 30
    assert {goal.id for goal in goals.goals("hard")} >= {"gather-green", "line-red-blue-green-purple-cyan"}


def test_at_least_1400_distinct_novel_sentences_disjoint_from_training():
    novel = [sentence for level in NOVEL_LEVELS for sentence in sentences(level)]
    assert len(set(novel)) == len(novel) >= 1400
    assert not set(novel) & set(sentences("train"))


def test_every_sentence_names_the_colours_of_its_goal():
    for level in LEVELS:
        for goal in goals.goals(level):
            spec = parse_spec(goal.id)
            colours = {BALL_COLORS[ball] for ball in spec.balls} if len(spec.balls) < 5 else set()
            for sentence in goal.sentences:
                assert all(colour in sentence for colour in colours), (goal.id, sentence)


def test_every_hard_goal_is_achievable():
    for spec in goals.hard_specs():
        arrangement = goals.witness(spec)
        assert arrangement is not None, spec.id
        balls = arrangement.reshape(5, 2)
        gaps = np.linalg.norm(balls[:, None] - balls[None], axis=-1) + np.eye(5)
        assert gaps.min() >= 0.12 and np.abs(balls).max() <= SPAWN_HALF_SIZE + 0.1


def test_hard_goals_are_stable_across_calls():
    assert [s.id for s in goals.hard_specs()] == [s.id for s in goals.hard_specs.__wrapped__()]


def test_unknown_goal_and_level_errors_are_clear(clevr):
    with pytest.raises(UnknownNameError, match="no train goal 'red-above-blue'; valid ids look like"):
        clevr.goal("train", "red-above-blue")
    with pytest.raises(UnknownNameError, match="expected one of train, rephrase, easy, hard"):
        clevr.goals("medium")
    with pytest.raises(UnknownNameError, match="goal id 'red-of-red' is invalid"):
        parse_spec("red-of-red")
