"""The datamodules satisfy the Protocols kalm reads them through (``kalm.grounding.contracts``,
``kalm.rl.contracts``)."""

from __future__ import annotations

import types
import typing

import pytest

from datamodules.rollout_goal import RolloutGoalDataModule
from datamodules.transitions import TransitionDataModule
from kalm.data import RolloutSpec
from kalm.grounding.contracts import GroundingData, grounding_data
from kalm.rl.contracts import TransitionData, transition_data
from tests.datamodules.test_transitions import episode, folder


def runtime_classes(hint: object) -> tuple[type, ...]:
    """The classes an annotation admits at run time (``str | None`` -> ``(str, NoneType)``, ``list[...]`` ->
    list)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return tuple(cls for arg in typing.get_args(hint) for cls in runtime_classes(arg))
    if hint is None or hint is type(None):
        return (type(None),)
    origin = typing.get_origin(hint)
    return (origin,) if isinstance(origin, type) else (hint,) if isinstance(hint, type) else ()


def check_attribute_types(protocol: type, instance: object) -> list[str]:
    """The annotated attributes of ``protocol`` whose value on ``instance`` has another type."""
    hints = typing.get_type_hints(protocol)
    wrong = []
    for name, hint in hints.items():
        classes = runtime_classes(hint)
        if classes and not getattr(classes[0], "_is_protocol", False):
            value = getattr(instance, name)
            if not isinstance(value, classes):
                wrong.append(f"{name}: {type(value).__name__}, expected {hint}")
    return wrong


def test_the_rollout_goal_datamodule_is_grounding_data():
    dm = RolloutGoalDataModule(dataset="kalm/kalm-clevr-real", backbone="tiny-llama")
    assert isinstance(dm, GroundingData) and grounding_data(dm) is dm
    assert check_attribute_types(GroundingData, dm) == []
    assert dm.resolved_revision is None  # known once the stream is opened


def test_the_transition_datamodule_is_transition_data_once_set_up(tmp_path, embedding_cache):
    real = folder(tmp_path, "real", [episode(1, 3, terminated=True, instruction="push the red ball left")])
    dm = TransitionDataModule(real=real, batch_size=8, embedding_cache=embedding_cache)
    assert transition_data(dm) is None  # before setup the sizes are unknown
    dm.setup("fit")
    assert isinstance(dm, TransitionData) and transition_data(dm) is dm
    assert check_attribute_types(TransitionData, dm) == []
    assert isinstance(dm.spec, RolloutSpec) and dm.env == "toy" and dm.goal_dim == 384
    assert isinstance(dm.encoder.model_id, str)
    assert dm.inputs == [{"repo_or_path": real, "revision": None, "commit": None}]


@pytest.mark.parametrize("accessor", [grounding_data, transition_data])
def test_other_objects_are_not_taken_for_datamodules(accessor):
    assert accessor(None) is None and accessor(object()) is None


def test_the_type_check_sees_a_wrong_attribute():
    class Wrong:
        dataset = 3
        resolved_revision = None
        state_tokens = 1

    assert check_attribute_types(GroundingData, Wrong()) == ["dataset: int, expected <class 'str'>"]
