"""Batches of goal-conditioned transitions with a fixed real : imaginary ratio (reference §6.4).

The paper trains "with the same proportion of offline data and imaginary rollout in each training
batch"; the authors' code sampled one merged buffer uniformly instead. Here every batch holds exactly
``round(batch_size * real_fraction)`` real transitions and the rest imaginary ones, each drawn
uniformly (with replacement) from its own pool.

A pool may also be drawn **level by level** (``TransitionPool(by_level=True)``): each row first picks one
of the pool's levels uniformly, then a transition of that level. Imagined rollouts differ in length by
level (an easy CLEVR rollout is one push, a rephrase one several), so a transition-uniform draw gives a
pooled policy each level's imagination in proportion to its length and success rate; by level, every
level gets the same share, as the paper's one policy per level with the same mix would.

Batch layout (a ``TensorDict`` with TorchRL's keys, batch size ``[B]``):

- ``observation`` ``[B, obs_dim + goal_dim]``: the state with the goal embedding concatenated;
- ``action`` ``[B]`` int64 (discrete) or ``[B, action_dim]`` float32;
- ``("next", "observation")`` (same goal embedding), ``("next", "reward")`` ``[B, 1]``,
  ``("next", "done")`` and ``("next", "terminated")`` ``[B, 1]`` bool;
- ``imaginary`` ``[B]`` bool: which rows came from imaginary rollouts (for logging and tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, get_args

import numpy as np
import torch
from tensordict import TensorDict
from torch.utils.data import IterableDataset

from kalm.data.transitions import TransitionArrays
from kalm.errors import ConfigError

ImaginaryMix = Literal["transitions", "levels"]
"""How a batch's imaginary rows are drawn: every transition equally likely, or every level the same share."""
IMAGINARY_MIXES: tuple[str, ...] = get_args(ImaginaryMix)

ACTION_EPS = 1e-5
"""Continuous actions are clipped to ``[-1 + eps, 1 - eps]`` so tanh-squashed log-likelihoods stay finite."""


class TransitionPool:
    """One source's transitions as torch tensors, with goal embeddings looked up per batch.

    ``by_level``: :meth:`draw` picks a level uniformly for each row, then a transition of that level
    (module docstring); otherwise every transition is equally likely.
    """

    def __init__(
        self, arrays: TransitionArrays, embeddings: np.ndarray, *, discrete: bool, by_level: bool = False
    ) -> None:
        self.states = torch.from_numpy(arrays.states)
        self.obs_index = torch.from_numpy(arrays.obs_index)
        actions = torch.from_numpy(arrays.actions)
        self.actions = actions.long() if discrete else actions.float().clamp(-1 + ACTION_EPS, 1 - ACTION_EPS)
        self.rewards = torch.from_numpy(arrays.rewards).unsqueeze(-1)
        self.done = torch.from_numpy(arrays.done).unsqueeze(-1)
        self.terminated = torch.from_numpy(arrays.terminated).unsqueeze(-1)
        self.embeddings = torch.from_numpy(embeddings)  # one row per distinct sentence, not per transition
        self.sentence = torch.from_numpy(arrays.sentence)
        self.imaginary = torch.from_numpy(arrays.source.astype(bool))
        self.levels: tuple[str, ...] = ()
        if by_level:  # each present level's transitions, one after the other, with where each level starts
            present = np.unique(arrays.level)
            self.levels = tuple(arrays.levels[i] for i in present)
            order = np.argsort(arrays.level, kind="stable")
            sizes = np.bincount(arrays.level, minlength=len(arrays.levels))[present]
            self.by_level_order = torch.from_numpy(order)
            self.level_sizes = torch.from_numpy(sizes)
            self.level_starts = torch.from_numpy(np.concatenate([[0], np.cumsum(sizes)[:-1]]))

    def __len__(self) -> int:
        return len(self.obs_index)

    def draw(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Indices of ``shape`` transitions drawn with replacement (uniformly, or level by level)."""
        if not self.levels:
            return torch.randint(len(self), shape, generator=generator)
        level = torch.randint(len(self.levels), shape, generator=generator)
        size = self.level_sizes[level]
        within = torch.minimum((torch.rand(shape, generator=generator) * size).long(), size - 1)
        return self.by_level_order[self.level_starts[level] + within]

    def gather(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """The transitions at ``index`` as flat tensors (``observation`` already holds the goal)."""
        rows = self.obs_index[index]
        goals = self.embeddings[self.sentence[index]]
        return {
            "observation": torch.cat([self.states[rows], goals], dim=-1),
            "next_observation": torch.cat([self.states[rows + 1], goals], dim=-1),
            "action": self.actions[index],
            "reward": self.rewards[index],
            "done": self.done[index],
            "terminated": self.terminated[index],
            "imaginary": self.imaginary[index],
        }


def split_counts(batch_size: int, real_fraction: float, *, has_imaginary: bool) -> tuple[int, int]:
    """``(real, imaginary)`` rows per batch: ``round(B * real_fraction)`` real (all real if no imaginary)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} is invalid; expected a positive integer")
    if not 0.0 <= real_fraction <= 1.0:
        raise ConfigError(f"real_fraction={real_fraction!r} is invalid; expected a fraction in [0, 1]")
    if not has_imaginary:
        return batch_size, 0
    real = round(batch_size * real_fraction)
    return real, batch_size - real


def to_tensordict(parts: list[dict[str, torch.Tensor]], batch_dims: int = 1) -> TensorDict:
    """Concatenate gathered parts along the last batch dimension into one TorchRL batch (module docstring).

    The batch carries the device its tensors are on, so moving it there (Lightning's batch transfer on a
    CPU run) returns it as it is instead of rebuilding every TensorDict level.
    """
    dim = batch_dims - 1
    flat = (
        parts[0]
        if len(parts) == 1
        else {key: torch.cat([p[key] for p in parts], dim=dim) for key in parts[0]}
    )
    size = flat["imaginary"].shape
    device = flat["observation"].device
    return TensorDict(
        {
            "observation": flat["observation"],
            "action": flat["action"],
            "imaginary": flat["imaginary"],
            "next": TensorDict(
                {
                    "observation": flat["next_observation"],
                    "reward": flat["reward"],
                    "done": flat["done"],
                    "terminated": flat["terminated"],
                },
                batch_size=size,
                device=device,
            ),
        },
        batch_size=size,
        device=device,
    )


class MixedBatches(IterableDataset[TensorDict]):
    """A stream of mixed batches: ``steps`` items per ``iter()``.

    With ``batches_per_step = K > 1`` each item stacks ``K`` independent batches (``[K, B]``), which
    the module consumes as ``K`` updates: sampling is done in one gather and the trainer's per-step
    overhead is paid once per ``K`` updates. The generator state is part of :meth:`state_dict`, so a
    resumed run continues the same sequence.
    """

    def __init__(
        self,
        real: TransitionPool,
        imaginary: TransitionPool | None,
        *,
        batch_size: int,
        real_fraction: float,
        steps: int,
        seed: int,
        batches_per_step: int = 1,
    ) -> None:
        if real is None or len(real) == 0:
            raise ConfigError("the real dataset has no transitions; a policy needs real data")
        self.pools = [real, imaginary]
        self.counts = split_counts(
            batch_size, real_fraction, has_imaginary=imaginary is not None and len(imaginary) > 0
        )
        self.steps = steps
        self.shape = (batches_per_step,) if batches_per_step > 1 else ()
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> TensorDict:
        """One batch."""
        parts = []
        for pool, count in zip(self.pools, self.counts, strict=True):
            if count:
                assert pool is not None
                index = pool.draw((*self.shape, count), self.generator)
                parts.append(pool.gather(index))
        return to_tensordict(parts, batch_dims=len(self.shape) + 1)

    def __iter__(self) -> Iterator[TensorDict]:
        for _ in range(self.steps):
            yield self.sample()

    def __len__(self) -> int:
        return self.steps

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


def seed_from(*values: int) -> int:
    """A 63-bit seed derived from integers (numpy's SeedSequence)."""
    return int(np.random.SeedSequence(list(values)).generate_state(1, dtype=np.uint64)[0] >> 1)
