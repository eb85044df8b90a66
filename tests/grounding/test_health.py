"""The chance guard stops a grounding whose action head never left chance, and only that one."""

import math
from types import SimpleNamespace

import pytest
import torch

from kalm.grounding.health import ActionChanceGuard, GroundingStalled


class _Strategy:
    def reduce(self, value, reduce_op="mean"):
        return value


def _trainer(loss, *, sanity=False):
    return SimpleNamespace(
        callback_metrics={} if loss is None else {"val/action_loss": torch.tensor(loss)},
        sanity_checking=sanity,
        global_step=400,
        strategy=_Strategy(),
    )


def _module(discrete=True, actions=40):
    return SimpleNamespace(
        model=SimpleNamespace(config=SimpleNamespace(discrete=discrete, action_dim=actions))
    )


def test_a_loss_at_chance_stops_the_fit_with_a_one_line_error():
    with pytest.raises(
        GroundingStalled, match=r"step 400 .* 3\.690 nats.*expected it below 3\.504"
    ) as caught:
        ActionChanceGuard().on_validation_end(_trainer(3.69), _module())
    assert "\n" not in str(caught.value)
    assert caught.value.chance == pytest.approx(math.log(40))


@pytest.mark.parametrize(
    ("loss", "sanity", "discrete"),
    [(2.68, False, True), (3.69, True, True), (None, False, True), (3.69, False, False)],
)
def test_a_learning_head_a_sanity_check_or_continuous_actions_pass(loss, sanity, discrete):
    ActionChanceGuard().on_validation_end(_trainer(loss, sanity=sanity), _module(discrete=discrete))
