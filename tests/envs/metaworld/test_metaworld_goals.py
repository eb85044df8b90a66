import gymnasium as gym
import numpy as np
import pytest

from kalm.envs import get_suite
from kalm.envs.goals import LEVELS, NOVEL_LEVELS
from kalm.envs.metaworld.tasks import TASKS, get_task
from kalm.errors import UnknownNameError

PAPER_TASKS = {
    "train": [
        "reach",
        "push",
        "pick-place",
        "button-press",
        "door-unlock",
        "door-open",
        "window-open",
        "faucet-open",
        "coffee-push",
        "coffee-button",
    ],
    "easy": [
        "reach-wall",
        "push-wall",
        "pick-place-wall",
        "button-press-wall",
        "door-lock",
        "door-close",
        "window-close",
        "faucet-close",
    ],
    "hard": ["hammer", "soccer", "make-coffee", "locked-door-open"],
}


def sentences(suite, level):
    return [sentence for goal in suite.goals(level) for sentence in goal.sentences]


def test_task_lists_per_level_follow_the_paper(metaworld):
    for level, names in PAPER_TASKS.items():
        assert [goal.id for goal in metaworld.goals(level)] == names
    assert [goal.id for goal in metaworld.goals("rephrase")] == PAPER_TASKS["train"]
    assert all(goal.level == level for level in LEVELS for goal in metaworld.goals(level))


def test_twenty_distinct_sentences_per_task_and_level_none_shared(metaworld):
    every = [sentence for level in LEVELS for sentence in sentences(metaworld, level)]
    assert len(every) == 20 * (10 + 10 + 8 + 4) == 640
    assert len(set(every)) == len(every)
    assert all(len(goal.sentences) == 20 for level in LEVELS for goal in metaworld.goals(level))
    novel = {sentence for level in NOVEL_LEVELS for sentence in sentences(metaworld, level)}
    assert not novel & set(sentences(metaworld, "train"))


def test_sentences_are_plain_english_sentences(metaworld):
    for level in LEVELS:
        for sentence in sentences(metaworld, level):
            assert sentence[0].isupper() and sentence[-1] in ".?!" and "  " not in sentence, sentence


def test_registered_under_its_gym_id(metaworld):
    assert get_suite("metaworld") is metaworld and metaworld.gym_id == "kalm/MetaWorld-v0"
    assert metaworld.spec.to_dict() == {"obs_dim": 91, "action_dim": 4, "discrete": False, "horizon": 100}
    env = gym.make("kalm/MetaWorld-v0")
    observation, info = env.reset(seed=0)
    assert observation.shape == (91,) and observation.dtype == np.float32
    assert env.action_space == gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    assert set(info) == {"goal_id", "level", "instruction", "success"}
    assert info["goal_id"] in PAPER_TASKS["train"]
    assert info["instruction"] in metaworld.goal("train", info["goal_id"]).sentences
    env.close()


def test_unknown_names_list_the_valid_ones(metaworld):
    with pytest.raises(UnknownNameError, match="no easy goal 'push'; valid ids look like 'reach-wall'"):
        metaworld.goal("easy", "push")
    with pytest.raises(UnknownNameError, match="unknown Meta-World task 'drawer-open'; valid tasks: reach"):
        get_task("drawer-open")
    with pytest.raises(UnknownNameError, match="unknown Meta-World task 'sweep'"):
        metaworld.success("sweep", np.zeros((2, 91)))
    with pytest.raises(UnknownNameError, match="expected one of train, rephrase, easy, hard"):
        metaworld.goals("medium")


def test_every_task_has_experts_for_its_entities():
    from metaworld import policies

    for task in TASKS.values():
        assert task.experts
        for expert in task.experts:
            assert hasattr(policies, expert.policy), expert.policy
            assert set(expert.entities) <= set(task.entities)
