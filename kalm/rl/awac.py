"""AWAC (Nair et al., 2020) as a TorchRL ``LossModule``: TorchRL 0.14 ships none.

Critic: clipped double-Q TD(0) towards ``r + gamma * (1 - terminated) * min_i Q'_i(s', a' ~ pi(s'))``.
Actor: advantage-weighted maximum likelihood of the dataset actions,
``-sum_b w_b log pi(a_b | s_b)`` with ``w = B * softmax((Q(s, a) - V(s)) / lam)`` over the batch and
``V(s)`` the mean of ``min_i Q_i(s, a~pi)`` over ``num_action_samples`` samples. This follows d3rlpy
2.0.2's ``AWAC`` (the authors' Meta-World learner, reference §6.3): ``lam = 1``, one action sample,
two critics; target critics are soft-updated by a ``SoftUpdate`` outside the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase, TensorDictParams
from tensordict.nn import TensorDictModule, dispatch
from tensordict.utils import NestedKey
from torchrl.envs.utils import step_mdp
from torchrl.objectives.common import LossModule
from torchrl.objectives.utils import (
    ValueEstimators,
    _cache_values,
    _vmap_func,
    dispatch_value_estimator,
    distance_loss,
)


class AWACLoss(LossModule):  # type: ignore[misc]  # torchrl ships no type information (LossModule is Any)
    """Advantage-weighted actor-critic loss (see the module docstring).

    Args:
        actor_network: a probabilistic actor (``get_dist``) over ``observation``.
        qvalue_network: a Q network reading ``observation`` and ``action``, writing ``state_action_value``.

    Keyword Args:
        num_qvalue_nets: number of critics (min over them in targets and advantages).
        lam: temperature of the advantage weights.
        num_action_samples: actions sampled per state to estimate ``V(s)``.
        loss_function: distance for the critic loss (``l2``, ``smooth_l1``, ``l1``).
        reduction: ``mean``, ``sum`` or ``none``.

    Returns (forward): a TensorDict with ``loss_actor``, ``loss_qvalue`` and detached diagnostics.
    """

    @dataclass
    class _AcceptedKeys:
        """Tensordict keys the loss reads (override with ``set_keys``)."""

        action: NestedKey = "action"
        state_action_value: NestedKey = "state_action_value"
        reward: NestedKey = "reward"
        done: NestedKey = "done"
        terminated: NestedKey = "terminated"
        priority: NestedKey = "td_error"

    tensor_keys: _AcceptedKeys
    default_keys = _AcceptedKeys
    default_value_estimator = ValueEstimators.TD0
    out_keys = ["loss_actor", "loss_qvalue", "advantage", "weight_max"]

    actor_network: TensorDictModule
    qvalue_network: TensorDictModule
    actor_network_params: TensorDictParams
    qvalue_network_params: TensorDictParams
    target_qvalue_network_params: TensorDictParams

    def __init__(
        self,
        actor_network: TensorDictModule,
        qvalue_network: TensorDictModule,
        *,
        num_qvalue_nets: int = 2,
        lam: float = 1.0,
        num_action_samples: int = 1,
        loss_function: str = "l2",
        reduction: str | None = None,
    ) -> None:
        super().__init__()
        self._in_keys: list[NestedKey] | None = None
        self.convert_to_functional(actor_network, "actor_network", create_target_params=False)
        self.convert_to_functional(
            qvalue_network, "qvalue_network", num_qvalue_nets, create_target_params=True
        )
        self.num_qvalue_nets = num_qvalue_nets
        self.lam = lam
        self.num_action_samples = num_action_samples
        self.loss_function = loss_function
        self.reduction = reduction or "mean"
        self._vmap_qvalue = _vmap_func(self.qvalue_network, randomness=self.vmap_randomness)

    def _forward_value_estimator_keys(self, **kwargs: Any) -> None:
        if self._value_estimator is not None:
            self._value_estimator.set_keys(
                value=self.tensor_keys.state_action_value,
                reward=self.tensor_keys.reward,
                done=self.tensor_keys.done,
                terminated=self.tensor_keys.terminated,
            )
        self._in_keys = None

    @property
    def in_keys(self) -> list[NestedKey]:
        if self._in_keys is None:
            keys = [
                self.tensor_keys.action,
                ("next", self.tensor_keys.reward),
                ("next", self.tensor_keys.done),
                ("next", self.tensor_keys.terminated),
                *self.actor_network.in_keys,
                *[("next", key) for key in self.actor_network.in_keys],
                *self.qvalue_network.in_keys,
            ]
            self._in_keys = list(dict.fromkeys(keys))
        return self._in_keys

    def make_value_estimator(self, value_type: ValueEstimators | None = None, **hyperparams: float) -> None:
        """TD(0) by default; the next state's value is written into the tensordict by :meth:`qvalue_loss`."""
        dispatch_value_estimator(
            self,
            value_type or self.default_value_estimator,
            supported=(ValueEstimators.TD0, ValueEstimators.TD1, ValueEstimators.TDLambda),
            tensor_keys={
                "value": self.tensor_keys.state_action_value,
                "reward": self.tensor_keys.reward,
                "done": self.tensor_keys.done,
                "terminated": self.tensor_keys.terminated,
            },
            value_network=None,
            **hyperparams,
        )

    @property
    @_cache_values  # type: ignore[untyped-decorator]  # torchrl's, untyped
    def _cached_detach_qvalue_network_params(self) -> TensorDictParams:
        return self.qvalue_network_params.detach()

    def _min_q(
        self, tensordict: TensorDictBase, action: torch.Tensor, params: TensorDictParams
    ) -> torch.Tensor:
        """``min_i Q_i(s, action)`` for the ``observation`` of ``tensordict``; shape ``[B]``."""
        td = tensordict.select(*self.qvalue_network.in_keys, strict=False).clone(False)
        td.set(self.tensor_keys.action, action)
        td = td.expand(self.num_qvalue_nets, *td.batch_size)
        return self._vmap_qvalue(td, params).get(self.tensor_keys.state_action_value).squeeze(-1).min(0)[0]

    def _dist(self, tensordict: TensorDictBase) -> torch.distributions.Distribution:
        with self.actor_network_params.to_module(self.actor_network, preserve_module_state=False):
            return self.actor_network.get_dist(tensordict.select(*self.actor_network.in_keys, strict=False))

    def qvalue_loss(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Clipped double-Q TD loss with the next action drawn from the current policy."""
        tensordict = tensordict.clone(False)
        with torch.no_grad():
            next_td = step_mdp(tensordict).select(*self.actor_network.in_keys, strict=False)
            next_action = self._dist(next_td).sample()
            next_value = self._min_q(next_td, next_action, self.target_qvalue_network_params)
        tensordict.set(("next", self.tensor_keys.state_action_value), next_value.unsqueeze(-1))
        td = tensordict.select(*self.qvalue_network.in_keys, strict=False)
        current = self._vmap_qvalue(
            td.expand(self.num_qvalue_nets, *td.batch_size), self.qvalue_network_params
        )
        current = current.get(self.tensor_keys.state_action_value).squeeze(-1)
        target = self.value_estimator.value_estimate(tensordict).squeeze(-1)
        loss = distance_loss(current, target.expand_as(current), loss_function=self.loss_function).sum(0)
        return self._reduce_loss(loss, tensordict=tensordict), {
            "td_error": (current - target).pow(2).detach()
        }

    def actor_loss(self, tensordict: TensorDictBase) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Advantage-weighted negative log-likelihood of the dataset actions."""
        dist = self._dist(tensordict)
        log_prob = dist.log_prob(tensordict.get(self.tensor_keys.action))
        with torch.no_grad():
            params = self._cached_detach_qvalue_network_params
            q_data = self._min_q(tensordict, tensordict.get(self.tensor_keys.action), params)
            samples = dist.sample((self.num_action_samples,))
            value = torch.stack([self._min_q(tensordict, sample, params) for sample in samples]).mean(0)
            advantage = q_data - value
            weights = torch.softmax(advantage / self.lam, dim=0) * advantage.numel()
        loss = self._reduce_loss(-(weights * log_prob), tensordict=tensordict)
        return loss, {"advantage": advantage.mean(), "weight_max": weights.max()}

    @dispatch  # type: ignore[untyped-decorator]  # tensordict's, untyped
    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        """Both losses on one batch (critic first, as in d3rlpy's update order)."""
        loss_qvalue, critic_info = self.qvalue_loss(tensordict)
        loss_actor, actor_info = self.actor_loss(tensordict)
        if self.tensor_keys.priority not in tensordict.keys(include_nested=True) and tensordict.ndim == 1:
            tensordict.set(self.tensor_keys.priority, critic_info["td_error"].max(0)[0])
        return TensorDict({"loss_actor": loss_actor, "loss_qvalue": loss_qvalue, **actor_info}, batch_size=[])
