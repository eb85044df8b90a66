"""Padded batches of encoded grounding examples, ready for one vectorised forward pass.

Numeric values are flattened across the batch in row-major (example, position) order, which is the
order in which boolean masks over ``[B, L]`` enumerate their ``True`` entries; ``GroundedLM`` therefore
places and reads them with a single masked indexing operation each. A state of an object-token codec fills
consecutive positions (one per object), so its ``[tokens, D]`` embeddings, flattened, land in the same order.
"""

from __future__ import annotations

from typing import Any
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from kalm.grounding.prompts import EncodedExample


@dataclass
class GroundingBatch:
    """Tensors of a padded batch. Masks are ``[B, L]`` bool; values are flattened in mask order."""

    input_ids: Tensor
    attention_mask: Tensor
    position_ids: Tensor
    task: Tensor
    state_input_mask: Tensor
    state_inputs: Tensor
    action_input_mask: Tensor
    action_inputs: Tensor
    state_target_mask: Tensor
    state_targets: Tensor
    state_references: Tensor
    """Per state target: the latest state before it (what a residual state head adds its change to)."""
    action_target_mask: Tensor
    action_targets: Tensor
    text_target_mask: Tensor
    text_targets: Tensor

    def to(self, device: torch.device | str) -> GroundingBatch:
        return GroundingBatch(**{name: value.to(device) for name, value in vars(self).items()})

    def __len__(self) -> int:
        return self.input_ids.shape[0]


def collate(
    examples: Sequence[EncodedExample],
    *,
    pad_id: int,
    obs_dim: int,
    discrete: bool,
    action_dim: int,
    left_pad: bool = False,
) -> GroundingBatch:
    """Pad ``examples`` to one length (right padding for training, left padding for generation)."""
    lengths = [len(example.input_ids) for example in examples]
    batch_size, length = len(examples), max(lengths)
    input_ids = torch.full((batch_size, length), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((batch_size, length), dtype=torch.long)
    masks = {name: torch.zeros((batch_size, length), dtype=torch.bool) for name in _SLOTS}
    values: dict[str, list[Any]] = {name: [] for name in _SLOTS}
    for row, example in enumerate(examples):
        offset = length - lengths[row] if left_pad else 0
        input_ids[row, offset : offset + lengths[row]] = torch.tensor(example.input_ids)
        attention_mask[row, offset : offset + lengths[row]] = 1
        for name in _SLOTS:
            width = example.state_tokens if name == "state_inputs" else 1
            for position, value in getattr(example, name):
                masks[name][row, offset + position : offset + position + width] = True
                values[name].append(value)
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    action_shape = (0,) if discrete else (0, action_dim)
    return GroundingBatch(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        task=torch.tensor([int(example.task) for example in examples], dtype=torch.long),
        state_input_mask=masks["state_inputs"],
        state_inputs=_floats(values["state_inputs"], (0, obs_dim)),
        action_input_mask=masks["action_inputs"],
        action_inputs=_actions(values["action_inputs"], discrete, action_shape),
        state_target_mask=masks["state_targets"],
        state_targets=_floats(values["state_targets"], (0, obs_dim)),
        state_references=_floats(
            [state for example in examples for state in example.state_references], (0, obs_dim)
        ),
        action_target_mask=masks["action_targets"],
        action_targets=_actions(values["action_targets"], discrete, action_shape),
        text_target_mask=masks["text_targets"],
        text_targets=torch.tensor(values["text_targets"], dtype=torch.long),
    )


_SLOTS = ("state_inputs", "action_inputs", "state_targets", "action_targets", "text_targets")


def _floats(values: list[Any], empty_shape: tuple[int, ...]) -> Tensor:
    if not values:
        return torch.zeros(empty_shape, dtype=torch.float32)
    return torch.from_numpy(np.asarray(values, dtype=np.float32))


def _actions(values: list[Any], discrete: bool, empty_shape: tuple[int, ...]) -> Tensor:
    if discrete:
        return torch.tensor(np.asarray(values, dtype=np.int64).reshape(-1), dtype=torch.long)
    return _floats(values, empty_shape)
