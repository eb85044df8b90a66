"""What the grounding stage reads from its datamodule, declared (``datamodules.rollout_goal`` implements it).

``GroundingModule`` and ``PushToHub`` take the datamodule Lightning attaches to the trainer; this Protocol
names the attributes they use, so kalm never imports ``datamodules`` (``tests/test_layering.py``) and a type
checker still sees every access.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class GroundingData(Protocol):
    """A source of rollout-goal episodes for grounding (``RolloutGoalDataModule``)."""

    dataset: str
    """The rollout dataset: a Hub repo id or a local folder."""
    resolved_revision: str | None
    """The commit the dataset was read at once streamed (``"local"`` for a folder, ``None`` before)."""
    state_tokens: int
    """Positions each state of an encoded example fills (the model's codec must read as many)."""

    def state_stats(self) -> dict[str, torch.Tensor]:
        """Mean and std of the training states and actions (``state_mean``, ``state_std``, ``action_mean``,
        ``action_std``): the codec's normalisation."""
        ...

    def episodes(self, *, validation: bool, shuffle_seed: int | None = None) -> Iterator[dict[str, Any]]:
        """The episodes (dataset rows) of one split."""
        ...


def grounding_data(datamodule: object) -> GroundingData | None:
    """``datamodule`` as :class:`GroundingData`, or ``None`` when there is none or it is of another kind."""
    return datamodule if isinstance(datamodule, GroundingData) else None
