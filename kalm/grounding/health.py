"""A grounding that never left chance is caught at its first validation instead of after the whole run.

On 2 CPU cores a grounding can stay stuck: its action head keeps predicting a uniform distribution (the
validation action loss stays at ``ln(number of actions)``) while the text loss falls. Such a model imagines
noise, and everything downstream of it measures nothing. :class:`ActionChanceGuard` stops the fit at a
validation whose discrete action loss is still within ``margin`` of that chance loss; ``kalm run`` then
grounds again under a new seed (``ground.restarts``) and says so in its log, stage record and report.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L

from kalm.errors import KalmError

CHANCE_MARGIN = 0.05
"""A validation action loss above ``(1 - CHANCE_MARGIN) * ln(n)`` counts as chance (n discrete actions)."""


class GroundingStalled(KalmError):
    """The action head of a grounding is still at chance at a validation."""

    def __init__(self, step: int, loss: float, chance: float) -> None:
        super().__init__(
            f"grounding stalled: at step {step} the validation action loss is {loss:.3f} nats, within "
            f"{CHANCE_MARGIN:.0%} of chance (ln of the action count: {chance:.3f}); expected it below "
            f"{(1 - CHANCE_MARGIN) * chance:.3f}"
        )
        self.step, self.loss, self.chance = step, loss, chance


class ActionChanceGuard(L.Callback):
    """Raise :class:`GroundingStalled` at the end of a validation (sanity checks excepted) whose
    ``val/action_loss`` is still at chance. Continuous actions have no uniform chance loss: no check.

    Args:
        margin: the fraction of the chance loss the validation loss must have fallen by.
    """

    def __init__(self, margin: float = CHANCE_MARGIN) -> None:
        self.margin = margin

    def on_validation_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        config = pl_module.model.config
        loss = trainer.callback_metrics.get("val/action_loss")
        if trainer.sanity_checking or not config.discrete or loss is None:
            return
        chance = math.log(config.action_dim)
        mean = float(
            trainer.strategy.reduce(loss.detach().clone(), reduce_op="mean")
        )  # every rank decides alike
        if mean > (1 - self.margin) * chance:
            raise GroundingStalled(trainer.global_step, mean, chance)
