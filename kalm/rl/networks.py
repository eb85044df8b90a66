"""Goal-conditioned networks: the paper's 2x256 ReLU feature extractor plus a linear head (reference §6.2).

Every network reads one input vector, the state with the goal embedding concatenated (``[s || g]``);
critics of continuous learners read ``[s || g || a]``. A policy is a plain ``nn.Module`` mapping that
input to an action; how it does depends on its ``head``:

- ``argmax``: the net gives one score per discrete action (logits or Q-values); act greedily.
- ``tanh``: a deterministic continuous actor, ``tanh(net(x))``.
- ``tanh_normal``: the net gives ``loc`` and ``scale`` of a tanh-squashed Gaussian; act with
  ``tanh(loc)``, the distribution's deterministic sample.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torchrl.modules import MLP

from kalm.errors import ConfigError

HEADS = ("argmax", "tanh", "tanh_normal")
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


@dataclass(frozen=True)
class NetworkConfig:
    """Hidden layer sizes and activation shared by a learner's actor and critics.

    Args:
        hidden: sizes of the hidden layers (the paper: ``[256, 256]``).
        activation: one of ``relu``, ``tanh``, ``elu``, ``gelu``.
    """

    hidden: tuple[int, ...] = (256, 256)
    activation: str = "relu"

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation {self.activation!r} is unknown; expected one of {', '.join(ACTIVATIONS)}"
            )
        if not self.hidden or any(int(size) < 1 for size in self.hidden):
            raise ConfigError(f"hidden={list(self.hidden)!r} is invalid; expected positive layer sizes")
        object.__setattr__(self, "hidden", tuple(int(size) for size in self.hidden))


def mlp(in_dim: int, out_dim: int, config: NetworkConfig) -> MLP:
    """``Linear(in, h1) -> act -> ... -> Linear(h_last, out)``; several inputs are concatenated."""
    return MLP(
        in_features=in_dim,
        out_features=out_dim,
        num_cells=list(config.hidden),
        activation_class=ACTIVATIONS[config.activation],
    )


@dataclass(frozen=True)
class PolicySpec:
    """Everything needed to rebuild a trained policy (saved next to its weights).

    Args:
        obs_dim: length of the environment state.
        goal_dim: length of the goal embedding.
        action_dim: number of discrete actions, or the continuous action length.
        discrete: whether actions are integers.
        head: how the network's output becomes an action (see the module docstring).
        network: hidden sizes and activation.
    """

    obs_dim: int
    goal_dim: int
    action_dim: int
    discrete: bool
    head: str
    network: NetworkConfig = field(default_factory=NetworkConfig)

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ConfigError(f"policy head {self.head!r} is unknown; expected one of {', '.join(HEADS)}")
        if self.discrete != (self.head == "argmax"):
            raise ConfigError(
                f"policy head {self.head!r} does not fit {'discrete' if self.discrete else 'continuous'}"
                " actions"
            )

    @property
    def in_dim(self) -> int:
        return self.obs_dim + self.goal_dim

    @property
    def out_dim(self) -> int:
        return 2 * self.action_dim if self.head == "tanh_normal" else self.action_dim

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["network"]["hidden"] = list(self.network.hidden)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicySpec:
        network = NetworkConfig(
            **{**data.get("network", {}), "hidden": tuple(data.get("network", {}).get("hidden", (256, 256)))}
        )
        return cls(
            int(data["obs_dim"]),
            int(data["goal_dim"]),
            int(data["action_dim"]),
            bool(data["discrete"]),
            str(data["head"]),
            network,
        )


class Policy(nn.Module):
    """``policy(observation) -> action`` for ``observation = [s || g]`` (a batch, ``[B, in_dim]``).

    ``self.net`` is the very module the learner trains (shared parameters), so the policy follows training.
    """

    def __init__(self, spec: PolicySpec, net: nn.Module | None = None) -> None:
        super().__init__()
        self.spec = spec
        self.net = net if net is not None else mlp(spec.in_dim, spec.out_dim, spec.network)

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        out = self.net(observation)
        if self.spec.head == "argmax":
            return out.argmax(dim=-1)
        if self.spec.head == "tanh_normal":
            out = out[
                ..., : self.spec.action_dim
            ]  # loc; NormalParamExtractor splits [loc, scale] in this order
        return torch.tanh(out)
