"""A dynamics ensemble fitted to the real transitions, and the check it puts on imagined rollouts.

The grounded LM imagines both the actions and the states they lead to, and the judge labels a rollout from its
imagined states. Where those states are wrong, a label is too: on CLEVR-Robot only about half of the rephrased
and a third of the hard rollouts labelled successful reach their goal when their actions are replayed in the
simulator (``kalm.imagine.replay``). Offline model-based RL meets the same problem with an ensemble of learned
dynamics models (MOPO, MOReL); here one checks KALM's labels:

- :class:`DynamicsEnsemble`: ``members`` MLPs, each mapping (state, action) to the change of the state,
  fitted to the real transitions only (the simulator is never called), every member on its own
  initialisation and minibatches;
- :func:`confirmed`: every imagined action sequence runs again from its real initial state through every
  member, and a rollout is confirmed when every member's states reach the outcome its label says (success or
  not) under the level's protocol. A label the learned dynamics cannot reproduce, or that the members
  disagree on, is not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from kalm.data.transitions import TransitionArrays
from kalm.envs.base import EnvSuite
from kalm.errors import ConfigError


@dataclass(frozen=True)
class DynamicsConfig:
    """How the ensemble is built and fitted.

    Args:
        members: MLPs in the ensemble.
        hidden: width of each member's two hidden layers.
        steps: Adam steps (one minibatch per member each).
        batch_size: transitions per member and step.
        lr: Adam's learning rate.
    """

    members: int = 5
    hidden: int = 128
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3

    def __post_init__(self) -> None:
        for name in ("members", "hidden", "steps", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(
                    f"dynamics {name}={getattr(self, name)!r} is invalid; expected a positive integer"
                )
        if not self.lr > 0:
            raise ConfigError(f"dynamics lr={self.lr!r} is invalid; expected a positive number")


class DynamicsEnsemble(nn.Module):
    """``members`` two-hidden-layer MLPs ``(state, action) -> next state - state``, evaluated as one batched
    matmul per layer; inputs and outputs are standardised with the real data's statistics (set by
    :meth:`fit`)."""

    def __init__(
        self, obs_dim: int, action_dim: int, *, discrete: bool, config: DynamicsConfig, seed: int = 0
    ) -> None:
        super().__init__()
        self.obs_dim, self.action_dim, self.discrete, self.config = obs_dim, action_dim, discrete, config
        generator = torch.Generator().manual_seed(seed)
        sizes = [obs_dim + action_dim, config.hidden, config.hidden, obs_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            bound = fan_in**-0.5
            weight = (torch.rand(config.members, fan_in, fan_out, generator=generator) * 2 - 1) * bound
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(config.members, 1, fan_out)))
        self.obs_mean: torch.Tensor
        self.obs_std: torch.Tensor
        self.delta_mean: torch.Tensor
        self.delta_std: torch.Tensor
        for name in ("obs_mean", "delta_mean"):
            self.register_buffer(name, torch.zeros(obs_dim))
        for name in ("obs_std", "delta_std"):
            self.register_buffer(name, torch.ones(obs_dim))

    def _inputs(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``[K, N, obs_dim + action_dim]`` from states ``[K, N, obs_dim]`` and actions ``[K, N]`` (discrete,
        one-hot encoded) or ``[K, N, action_dim]``."""
        if self.discrete:
            coded = nn.functional.one_hot(actions.long(), self.action_dim).float()
        else:
            coded = actions.float()
        return torch.cat([(states - self.obs_mean) / self.obs_std, coded], dim=-1)

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Standardised state changes ``[K, N, obs_dim]`` predicted by each member."""
        hidden = self._inputs(states, actions)
        last = len(self.weights) - 1
        for index, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
            hidden = torch.baddbmm(bias, hidden, weight)
            if index < last:
                hidden = torch.relu(hidden)
        return hidden

    @torch.no_grad()
    def step(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Each member's next states ``[K, N, obs_dim]`` from its states ``[K, N, obs_dim]``."""
        return states + self(states, actions) * self.delta_std + self.delta_mean

    def fit(self, arrays: TransitionArrays, *, seed: int = 0) -> list[float]:
        """Fit every member to ``arrays``' transitions (MSE on standardised state changes); returns the mean
        loss of each tenth of the steps."""
        states = torch.from_numpy(arrays.states[arrays.obs_index])
        deltas = torch.from_numpy(arrays.states[arrays.obs_index + 1]) - states
        actions = torch.from_numpy(np.asarray(arrays.actions))
        if len(states) == 0:
            raise ConfigError("the dynamics ensemble fits real transitions; the real dataset has none")
        self.obs_mean.copy_(states.mean(0))
        self.obs_std.copy_(states.std(0).clamp_min(1e-6))
        self.delta_mean.copy_(deltas.mean(0))
        self.delta_std.copy_(deltas.std(0).clamp_min(1e-6))
        targets = (deltas - self.delta_mean) / self.delta_std
        generator = torch.Generator().manual_seed(seed)
        optimiser = torch.optim.Adam(self.parameters(), lr=self.config.lr)
        members, batch = self.config.members, min(self.config.batch_size, len(states))
        losses, window = [], max(1, self.config.steps // 10)
        total = 0.0
        for step in range(self.config.steps):
            index = torch.randint(len(states), (members, batch), generator=generator)
            loss = nn.functional.mse_loss(self(states[index], actions[index]), targets[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item()
            if (step + 1) % window == 0:
                losses.append(total / window)
                total = 0.0
        return losses

    @torch.no_grad()
    def rollout(self, initial: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Every member's states ``[K, N, T + 1, obs_dim]`` from initial states ``[N, obs_dim]`` and action
        sequences ``[N, T]`` (discrete) or ``[N, T, action_dim]``, padded to a common length ``T``."""
        members = self.config.members
        state = torch.from_numpy(np.asarray(initial, dtype=np.float32)).expand(members, -1, -1)
        taken = torch.from_numpy(np.asarray(actions))
        states = [state]
        for t in range(taken.shape[1]):
            action = taken[:, t]
            state = self.step(state, action.expand(members, *action.shape))
            states.append(state)
        return torch.stack(states, dim=2).numpy()


def confirmed(model: DynamicsEnsemble, suite: EnvSuite, rows: Any) -> np.ndarray:
    """For each rollout of ``rows`` (a dataset or row list of the rollout schema), whether every member of
    ``model``, taking the rollout's actions from its initial state, reaches the outcome its ``success`` label
    says, under its level's protocol (``EnvSuite.outcome``)."""
    episodes = list(rows) if not isinstance(rows, list) else rows
    if not episodes:
        return np.zeros(0, dtype=bool)
    longest = max(int(row["length"]) for row in episodes)
    spec = suite.spec
    shape = (len(episodes), longest) if spec.discrete else (len(episodes), longest, spec.action_dim)
    actions = np.zeros(shape, dtype=np.int64 if spec.discrete else np.float32)
    for index, row in enumerate(episodes):
        taken = np.asarray(row["actions"])
        actions[index, : len(taken)] = taken.reshape(len(taken), *shape[2:])
    initial = np.stack([np.asarray(row["observations"][0], dtype=np.float32) for row in episodes])
    predicted = model.rollout(initial, actions)
    verdicts = np.ones(len(episodes), dtype=bool)
    for index, row in enumerate(episodes):
        length = int(row["length"])
        goal, level, label = str(row["goal_id"]), str(row["level"]), bool(row["success"])
        verdicts[index] = all(
            suite.outcome(goal, level, member[index, : length + 1]).success == label for member in predicted
        )
    return verdicts
