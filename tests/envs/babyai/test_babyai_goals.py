"""BabyAI goal sets: the strict split of object-colour combinations, sentences, kinds, strict
interpretation."""

from __future__ import annotations

import numpy as np
import pytest

from kalm.envs.babyai.goals import HELD_OUT_DOORS, HELD_OUT_OBJECTS, TRAIN_DOORS, TRAIN_OBJECTS
from kalm.envs.babyai.missions import objects, parse_spec
from kalm.envs.babyai.sampling import sample_layout
from kalm.envs.base import normalize_sentence
from kalm.errors import UnknownNameError

HELD_OUT = set(HELD_OUT_OBJECTS) | set(HELD_OUT_DOORS)


def test_levels_and_their_kinds(babyai):
    sizes = {level: len(babyai.goals(level)) for level in ("train", "rephrase", "easy", "hard")}
    assert sizes == {"train": 68, "rephrase": 68, "easy": 28, "hard": 60}
    assert [g.id for g in babyai.goals("rephrase")] == [g.id for g in babyai.goals("train")]
    kinds = {level: {babyai.goal_kind(g.id) for g in babyai.goals(level)} for level in sizes}
    assert kinds["train"] == kinds["easy"] == {"go to", "pick up", "open", "put next"}
    assert kinds["hard"] == {"X, then Y", "X after you Y"}
    assert (
        len(set(TRAIN_OBJECTS) | set(HELD_OUT_OBJECTS)) == 18 and len(TRAIN_DOORS) + len(HELD_OUT_DOORS) == 6
    )
    assert {obj.colour for obj in HELD_OUT_OBJECTS} == {
        obj.colour for obj in TRAIN_OBJECTS
    }  # every colour seen
    assert {obj.type for obj in HELD_OUT_OBJECTS} == {obj.type for obj in TRAIN_OBJECTS}  # every type seen


def test_held_out_combinations_appear_only_in_easy_goals_and_their_scenes(babyai):
    for level in ("train", "rephrase", "hard"):
        for goal in babyai.goals(level):
            assert not set(objects(parse_spec(goal.id))) & HELD_OUT, goal.id
            for sentence in goal.sentences:
                assert not any(f" {obj.colour} {obj.type}" in f" {sentence.lower()}" for obj in HELD_OUT), (
                    sentence
                )
    for goal in babyai.goals("easy"):
        assert set(objects(parse_spec(goal.id))) & HELD_OUT, goal.id
    rng = np.random.default_rng(0)
    for level in ("train", "rephrase", "hard", "easy"):
        for goal in babyai.goals(level):
            layout = sample_layout(parse_spec(goal.id), level, rng)
            in_scene = {thing.obj for thing in layout.things}
            assert set(objects(parse_spec(goal.id))) <= in_scene
            assert in_scene & HELD_OUT <= set(
                objects(parse_spec(goal.id))
            )  # held-out only where the goal names it
            assert len(in_scene) == 6


def test_hard_sequences_name_different_objects_in_their_two_missions(babyai):
    for goal in babyai.goals("hard"):
        spec = parse_spec(goal.id)
        assert not set(objects(spec.a)) & set(objects(spec.b))
        assert any(", then " in s or " after you " in s for s in goal.sentences)


def test_rephrasings_share_no_sentence_with_training(babyai):
    train = {normalize_sentence(s) for g in babyai.goals("train") for s in g.sentences}
    assert len(train) == 68 * 8  # every training sentence names one goal
    for goal in babyai.goals("rephrase"):
        assert not {normalize_sentence(s) for s in goal.sentences} & train


def test_ids_round_trip_and_bad_ids_list_the_grammar():
    for goal_id in ("goto-red-door", "putnext-red-box-blue-ball", "after(open-red-door,pickup-grey-ball)"):
        assert parse_spec(goal_id).id == goal_id
    for bad in ("goto-pink-ball", "pickup-red-door", "putnext-red-ball-red-ball", "then(goto-red-ball)"):
        with pytest.raises(UnknownNameError, match="BabyAI goal id .* expected e.g. 'goto-red-ball'"):
            parse_spec(bad)


def test_strict_interpreter_accepts_training_sentences_only(babyai):
    for goal in babyai.goals("train"):
        for sentence in goal.sentences:
            assert babyai.interpret(sentence.upper() + ".") == goal.id
    assert babyai.interpret("go to the red box") == "goto-red-box"
    for text in (
        "go to the red ball",
        "put the red box next to the red box",
        "go to the red box please",
        "Could you please make your way over to the red crate?",
        "pick up the blue",
    ):
        assert babyai.interpret(text) is None, text


def test_slots_of_goals_and_lenient_reading_of_descriptions(babyai):
    assert babyai.goal_slots("putnext-red-box-blue-key") == {
        "verb": "put next",
        "colour": "red",
        "object": "box",
    }
    assert babyai.read_slots("carry the red box over to the blue key") == {
        "verb": "put next",
        "colour": "red",
        "object": "box",
    }
    assert babyai.read_slots("Snatch the green crate!") == {
        "verb": "pick up",
        "colour": "green",
        "object": "box",
    }
    assert babyai.read_slots("go to the purple thing") == {
        "verb": "go to",
        "colour": "purple",
        "object": None,
    }
    assert babyai.read_slots("hello") == {"verb": None, "colour": None, "object": None}
