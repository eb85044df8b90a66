"""The rollout codec: how numeric states and actions enter and leave the transformer (reference §2.2-2.3).

States are normalised with statistics of the training data (stored as buffers, so they travel with the
model) and embedded by a small MLP; discrete actions by an ``nn.Embedding``, continuous ones by an MLP.
Numeric embeddings are layer-normalised and rescaled so that their vector norm equals the RMS norm of the
backbone's token embeddings: they enter the residual stream at the scale the transformer expects (a
layer-normalised vector has norm sqrt(d_model); left at that size, a numeric slot would drown what the
layers add to it, and the action head could not see the goal). Heads map hidden states back: a state
regression head (normalised units), an action head (logits, or a normalised regression for continuous
actions).

With ``residual_states`` (the default for new models) the state head predicts the *change* from the latest
state in context, zero-initialised: an untrained model copies the state (on CLEVR-Robot that alone is a 4x
lower error than the absolute head reaches after 800 steps), and training spends its signal on what actions
do instead of on reproducing positions through the transformer.

With ``objects`` (an environment whose state is the same few numbers for each of several named objects, such
as CLEVR-Robot's five balls' positions), a state enters as one token per object instead of one for the whole
vector: a shared MLP embeds each object's slice, and a learned identity vector, initialised from the
backbone's embedding of the object's name (``" red"``), tells the tokens apart. Attention can then read "the
red ball's position" by matching the goal's colour word to its ball's token, instead of decoding it from one
entangled vector. A state still leaves through one head over the whole vector.

With ``object_actions`` as well (discrete actions that are object-major, ``action = object * n + k``, as
CLEVR-Robot's ``ball * 8 + direction``), the action head's logits get, for each object's actions, the score of
the hidden state against that object's identity vector: with a backbone whose LM head is its token embedding
(SmolLM2, Gemma 3), that score starts as the LM's logit for saying the object's name next, so choosing "the
red ball" begins as the language model's own choice of the word "red".

With ``object_action_inputs`` (on top of ``object_actions``), an action also *enters* factored: its embedding
is the sum of its object's identity vector, a vector for its kind (shared by every object: CLEVR-Robot's push
direction, initialised from the backbone's embedding of the direction's name, " left"), and a per-action
correction that starts at zero. A pushed ball's colour and the push's direction are then in the action token
as the words that name them, so describing a rollout can start as copying words the rollout already holds,
and what one ball's pushes teach about a direction is shared by all five. With ``action_kind_scores`` as well,
each action's logit also adds the hidden state's score against its kind's vector, which (with a tied LM head)
starts as the LM's logit for saying the direction's name next: choosing "left" begins as saying "left".
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RolloutCodec(nn.Module):
    """Embeddings and heads for one environment's states and actions.

    Args:
        obs_dim: state vector length.
        action_dim: number of discrete actions, or the continuous action vector length.
        discrete: whether actions are discrete.
        d_model: the backbone's hidden size.
        hidden: width of the embedding MLPs.
        token_rms: RMS vector norm of the backbone's token embeddings (numeric embeddings get this norm).
        residual_states: the state head predicts the change from a reference state (see the module docstring).
        objects: names of the objects whose equal slices make up the state, in order (one token each); empty
            for one token per state.
        object_words: ``[len(objects), d_model]`` initial identity vectors (the backbone's embeddings of the
            names); random when not given.
        object_actions: discrete actions are object-major; add each object's identity score to its actions'
            logits (see the module docstring).
        object_relations: each object's token also embeds where every object is relative to it (offsets in
            units of the data's spread), so a relation between two objects is in one token.
        object_action_inputs: with ``object_actions``, an action's embedding is its object's identity plus its
            kind's vector plus a zero-initialised per-action correction (see the module docstring).
        action_words: ``[action_dim // len(objects), d_model]`` initial kind vectors for
            ``object_action_inputs`` (the backbone's embeddings of the kinds' names); random when not given.
        action_kind_scores: with ``object_action_inputs``, each action's logit also adds the hidden state's
            score against its kind's vector (see the module docstring).
    """

    # Buffers (registered in __init__; declared here so type checkers see Tensors, not ``Tensor | Module``).
    embed_scale: Tensor
    state_mean: Tensor
    state_std: Tensor
    action_mean: Tensor
    action_std: Tensor
    object_identity: nn.Parameter | None
    action_kind: nn.Parameter | None

    def __init__(
        self,
        *,
        obs_dim: int,
        action_dim: int,
        discrete: bool,
        d_model: int,
        hidden: int = 256,
        token_rms: float = 1.0,
        residual_states: bool = False,
        objects: Sequence[str] = (),
        object_words: Tensor | None = None,
        object_actions: bool = False,
        object_relations: bool = False,
        object_action_inputs: bool = False,
        action_words: Tensor | None = None,
        action_kind_scores: bool = False,
    ) -> None:
        super().__init__()
        self.obs_dim, self.action_dim, self.discrete = obs_dim, action_dim, discrete
        self.residual_states = residual_states
        self.objects = tuple(objects)
        self.tokens_per_state = max(1, len(self.objects))
        if obs_dim % self.tokens_per_state:
            raise ValueError(
                f"a state of {obs_dim} numbers cannot be split evenly into {len(self.objects)} objects "
                f"{list(self.objects)}; expected obs_dim to be a multiple of the number of objects"
            )
        if object_relations and not self.objects:
            raise ValueError("object_relations needs objects (one token per object)")
        self.object_relations = object_relations
        width = obs_dim // self.tokens_per_state
        self.state_embed = _mlp(
            width * (1 + self.tokens_per_state if object_relations else 1), hidden, d_model
        )
        if self.objects:
            words = object_words if object_words is not None else torch.randn(len(self.objects), d_model)
            if tuple(words.shape) != (len(self.objects), d_model):
                raise ValueError(
                    f"object_words has shape {tuple(words.shape)}; expected ({len(self.objects)}, {d_model})"
                )
            self.object_identity = nn.Parameter(words.detach().clone().float())
        else:
            self.object_identity = None
        if object_actions and (not self.objects or not discrete or action_dim % len(self.objects)):
            raise ValueError(
                "object_actions needs discrete actions that divide evenly among the objects; got "
                f"{action_dim} {'discrete' if discrete else 'continuous'} actions and "
                f"{len(self.objects)} objects"
            )
        self.object_actions = object_actions
        if object_action_inputs and not object_actions:
            raise ValueError("object_action_inputs needs object_actions (object-major discrete actions)")
        if action_kind_scores and not object_action_inputs:
            raise ValueError("action_kind_scores needs object_action_inputs (the kinds' vectors)")
        self.object_action_inputs, self.action_kind_scores = object_action_inputs, action_kind_scores
        self.action_kind = None
        if object_action_inputs:
            kinds = action_dim // len(self.objects)
            words = action_words if action_words is not None else torch.randn(kinds, d_model)
            if tuple(words.shape) != (kinds, d_model):
                raise ValueError(
                    f"action_words has shape {tuple(words.shape)}; expected ({kinds}, {d_model})"
                )
            self.action_kind = nn.Parameter(words.detach().clone().float())
            self.action_embed: nn.Module = nn.Embedding(action_dim, d_model)  # the per-action correction
            nn.init.zeros_(self.action_embed.weight)
        elif discrete:
            self.action_embed = nn.Sequential(
                nn.Embedding(action_dim, d_model), nn.LayerNorm(d_model, elementwise_affine=False)
            )
        else:
            self.action_embed = _mlp(action_dim, hidden, d_model)
        self.state_head = nn.Linear(d_model, obs_dim)
        if residual_states:
            nn.init.zeros_(self.state_head.weight)
            nn.init.zeros_(self.state_head.bias)
        self.action_head = nn.Linear(d_model, action_dim)
        self.register_buffer("embed_scale", torch.tensor(float(token_rms) / d_model**0.5))
        self.register_buffer("state_mean", torch.zeros(obs_dim))
        self.register_buffer("state_std", torch.ones(obs_dim))
        self.register_buffer("action_mean", torch.zeros(0 if discrete else action_dim))
        self.register_buffer("action_std", torch.ones(0 if discrete else action_dim))

    def set_normalization(
        self,
        *,
        state_mean: Tensor,
        state_std: Tensor,
        action_mean: Tensor | None = None,
        action_std: Tensor | None = None,
    ) -> None:
        """Store the training data's statistics (std is floored to avoid dividing by ~0)."""
        self.state_mean.copy_(torch.as_tensor(state_mean))
        self.state_std.copy_(torch.as_tensor(state_std).clamp(min=1e-3))
        if not self.discrete and action_mean is not None and action_std is not None:
            self.action_mean.copy_(torch.as_tensor(action_mean))
            self.action_std.copy_(torch.as_tensor(action_std).clamp(min=1e-3))

    def normalize_states(self, states: Tensor) -> Tensor:
        return (states - self.state_mean) / self.state_std

    def denormalize_states(self, states: Tensor) -> Tensor:
        return states * self.state_std + self.state_mean

    def normalize_actions(self, actions: Tensor) -> Tensor:
        return actions if self.discrete else (actions - self.action_mean) / self.action_std

    def denormalize_actions(self, actions: Tensor) -> Tensor:
        return actions if self.discrete else actions * self.action_std + self.action_mean

    def predict_states(self, hidden: Tensor, references: Tensor) -> Tensor:
        """Hidden states ``[N, d_model]`` -> predicted states in normalised units, given the ``[N, obs_dim]``
        raw reference states (the latest state before each prediction; unused by an absolute head)."""
        output = self.state_head(hidden)
        return output + self.normalize_states(references) if self.residual_states else output

    def action_logits(self, hidden: Tensor) -> Tensor:
        """Hidden states ``[N, d_model]`` -> the action head's output ``[N, action_dim]`` (logits, or a
        normalised regression for continuous actions)."""
        output = self.action_head(hidden)
        if not self.object_actions:
            return output
        assert self.object_identity is not None  # checked in __init__
        scores = hidden @ self.object_identity.to(hidden.dtype).T  # [N, objects]
        output = output + scores.repeat_interleave(self.action_dim // len(self.objects), dim=-1)
        if self.action_kind_scores:
            assert self.action_kind is not None  # checked in __init__
            kinds = hidden @ self.action_kind.to(hidden.dtype).T  # [N, kinds]
            output = output + kinds.repeat(*([1] * (kinds.dim() - 1)), len(self.objects))
        return output

    def embed_states(self, states: Tensor) -> Tensor:
        """Raw states ``[N, obs_dim]`` -> embeddings ``[N, tokens_per_state, d_model]``.

        Per object: the layer-normalised sum of its slice's embedding and its identity vector, each
        layer-normalised first so that neither dominates."""
        normalised = self.normalize_states(states)
        if self.object_identity is None:
            return self.state_embed(normalised)[:, None] * self.embed_scale
        slices = normalised.reshape(len(states), self.tokens_per_state, -1)
        if self.object_relations:
            raw = states.reshape(slices.shape)
            spread = self.state_std.reshape(slices.shape[1:]).mean(0)
            # [N, i, j, width]: object j seen from object i
            offsets = (raw[:, None] - raw[:, :, None]) / spread
            slices = torch.cat([slices, offsets.flatten(2)], dim=-1)
        identity = F.layer_norm(self.object_identity, self.object_identity.shape[-1:])
        return F.layer_norm(self.state_embed(slices) + identity, identity.shape[-1:]) * self.embed_scale

    def embed_actions(self, actions: Tensor) -> Tensor:
        """Raw actions (``[N]`` indices or ``[N, action_dim]``) -> embeddings ``[N, d_model]``."""
        if self.action_kind is None:
            return self.action_embed(self.normalize_actions(actions)) * self.embed_scale
        assert self.object_identity is not None  # object_action_inputs needs objects (checked in __init__)
        kinds = len(self.action_kind)
        shape = self.action_kind.shape[-1:]
        summed = (
            F.layer_norm(self.object_identity, shape)[actions // kinds]
            + F.layer_norm(self.action_kind, shape)[actions % kinds]
            + self.action_embed(actions)
        )
        return F.layer_norm(summed, shape) * self.embed_scale


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden),
        nn.GELU(),
        nn.Linear(hidden, outputs),
        nn.LayerNorm(outputs, elementwise_affine=False),
    )
