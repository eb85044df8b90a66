"""What the offline-RL stage reads from its datamodule, declared (``datamodules.transitions`` implements it).

``OfflineRLModule`` builds its networks from the attached datamodule's sizes; this Protocol names what it
reads, so kalm never imports ``datamodules`` (``tests/test_layering.py``) and a type checker still sees every
access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from kalm.data import RolloutSpec

if TYPE_CHECKING:
    from kalm.rl.goal_encoder import GoalStandardization


class GoalEncoding(Protocol):
    """The frozen goal encoder of the data (``kalm.rl.goal_encoder.GoalEncoder``)."""

    model_id: str
    standardization: GoalStandardization | None
    """Applied to the embeddings of the data's goals (``None``: raw), kept with the policy."""


@runtime_checkable
class TransitionData(Protocol):
    """A source of goal-conditioned transition batches (``TransitionDataModule``)."""

    spec: RolloutSpec | None
    """The rollout shapes of the data (``None`` before ``setup``)."""
    env: str | None
    """The environment the rollouts come from (``None`` before ``setup``)."""
    encoder: GoalEncoding
    inputs: list[dict[str, Any]]
    """Provenance of every input dataset: ``repo_or_path``, ``revision``, ``commit``."""

    @property
    def goal_dim(self) -> int:
        """Length of the goal embedding appended to each state."""
        ...


def transition_data(datamodule: object) -> TransitionData | None:
    """``datamodule`` as :class:`TransitionData` once set up (``spec`` known), else ``None``."""
    if getattr(datamodule, "spec", None) is None or not isinstance(datamodule, TransitionData):
        return None
    return datamodule
