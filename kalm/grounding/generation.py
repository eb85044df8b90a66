"""Batched decoding with a grounded LM: imagined rollouts (goal -> rollout) and explanations (rollout ->
goal).

Rollouts are decoded as action, state, action, state, ... with one backbone call per generated element
and the KV cache; prompts are left-padded so every row appends at the same position. A rollout that its
stop callback ends leaves the batch (its rows of the cache are dropped), so the backbone only ever runs
over the rollouts still going. ``use_cache=False`` recomputes the whole sequence for every element
instead (the authors' way; kept as the reference for tests and benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

ACCELERATOR_STOP_EVERY = 8
"""On an accelerator, decoded states are judged in windows of this many (one host copy per window)."""
StopFn = Callable[[Tensor, Tensor], Tensor]
"""``stop(observations [n, t + 1, obs_dim], rows [n]) -> bool [n]``: whether each rollout still going is
finished; ``rows`` are their indices in the batch."""
ProjectFn = Callable[[Tensor, Tensor], Tensor]
"""``project(states [n, obs_dim], initial_states [n, obs_dim]) -> [n, obs_dim]``: decoded states put back on
what the environment's observation guarantees (``EnvSuite.project_states``)."""


@dataclass
class ImaginedRollouts:
    """Decoded rollouts: ``observations [B, T + 1, obs_dim]``, ``actions [B, T(, A)]``, ``lengths [B]``.

    Row ``b`` is valid up to ``lengths[b]`` actions; ``stopped[b]`` tells whether the stop callback ended it.
    """

    observations: np.ndarray
    actions: np.ndarray
    lengths: np.ndarray
    stopped: np.ndarray

    def rollout(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The valid observations and actions of rollout ``index``."""
        length = int(self.lengths[index])
        return self.observations[index, : length + 1], self.actions[index, :length]


class Decoder:
    """Appends embeddings to a batch of left-padded sequences and returns the last hidden states."""

    def __init__(
        self, model: Any, embeds: Tensor, attention_mask: Tensor, position_ids: Tensor, use_cache: bool
    ):
        self.model, self.use_cache = model, use_cache
        self.attention_mask, self.next_position = attention_mask, position_ids[:, -1:] + 1
        self.cache: Any = None
        self.embeds = embeds
        self.last = self._run(embeds, position_ids)

    def append(self, new_embeds: Tensor) -> Tensor:
        """Append one element per row (``[B, D]``, or ``[B, n, D]`` for an element of ``n`` positions, such as
        a state of an object-token codec); return the new last hidden states ``[B, D]``."""
        new = new_embeds[:, None] if new_embeds.dim() == 2 else new_embeds
        count = new.shape[1]
        ones = self.attention_mask.new_ones((self.attention_mask.shape[0], count))
        self.attention_mask = torch.cat([self.attention_mask, ones], dim=1)
        positions = self.next_position + torch.arange(count, device=self.next_position.device)
        self.next_position = self.next_position + count
        if self.use_cache:
            self.last = self._run(new, positions)
        else:
            self.embeds = torch.cat([self.embeds, new], dim=1)
            positions = (self.attention_mask.cumsum(-1) - 1).clamp(min=0)
            self.last = self._run(self.embeds, positions)
        return self.last

    def keep(self, rows: Tensor) -> None:
        """Drop every row but ``rows`` (a boolean mask over the current rows) from the batch."""
        self.attention_mask, self.next_position = self.attention_mask[rows], self.next_position[rows]
        self.last = self.last[rows]
        if self.use_cache:
            self.cache.batch_select_indices(rows.nonzero().squeeze(-1))
        else:
            self.embeds = self.embeds[rows]

    def _run(self, embeds: Tensor, position_ids: Tensor) -> Tensor:
        outputs = self.model.hidden_states(
            embeds,
            self.attention_mask,
            position_ids,
            use_cache=self.use_cache,
            past_key_values=self.cache if self.use_cache else None,
        )
        if self.use_cache:
            self.cache = outputs.past_key_values
        return outputs.last_hidden_state[:, -1]


@torch.no_grad()
def generate_rollouts(
    model: Any,
    goals: list[str],
    initial_states: np.ndarray,
    *,
    horizon: int,
    greedy: bool = True,
    temperature: float | Sequence[float] = 1.0,
    generator: torch.Generator | None = None,
    stop: StopFn | None = None,
    project: ProjectFn | None = None,
    use_cache: bool = True,
    stop_every: int | None = None,
) -> ImaginedRollouts:
    """Imagine one rollout per goal sentence, starting from the matching initial state.

    Args:
        model: a ``GroundedLM``.
        goals: goal sentences, one per rollout.
        initial_states: ``[B, obs_dim]`` real initial states.
        horizon: the maximum number of actions.
        greedy: argmax actions; otherwise sample (softmax with ``temperature``, or Gaussian noise of that
            scale in normalised units for continuous actions). States are always the regression output.
            ``temperature`` may be one value per rollout.
        generator: random generator for sampling.
        stop: per-rollout stop callback (e.g. the level's judge), called after every state with the rollouts
            still going; a rollout it ends leaves the batch.
        project: maps each decoded state (with its rollout's initial state) onto what the environment's
            observation guarantees (``EnvSuite.project_states``) before it is judged and fed back.
        use_cache: use the KV cache (one backbone call per element) or recompute everything.
        stop_every: judge with ``stop`` after every ``stop_every`` states (default: every state on a CPU,
            every ``ACCELERATOR_STOP_EVERY`` on an accelerator). Every state is still judged, on one host copy
            of the window, and a rollout still ends at its first stopping state; the rollouts that stopped
            leave the batch at the window's end. So a GPU waits for the host once per window, not once per
            decoded state; greedy decoding gives the same rollouts, sampling draws differ (rows leave the
            batch later).
    """
    if horizon < 1:
        raise ValueError(f"horizon={horizon}: a rollout needs at least one action")
    codec, device = model.codec, next(model.parameters()).device
    initial = torch.as_tensor(np.asarray(initial_states), dtype=torch.float32, device=device)
    batch = model.collate(
        [model.prompts.goal_prompt(g, s) for g, s in zip(goals, initial.cpu().numpy(), strict=True)],
        left_pad=True,
    ).to(device)
    decoder = Decoder(model, model.embed(batch), batch.attention_mask, batch.position_ids, use_cache)
    size = len(goals)
    observations = initial.new_zeros((size, horizon + 1, initial.shape[-1]))
    observations[:, 0] = initial
    actions: Tensor | None = None
    lengths = torch.full((size,), horizon, dtype=torch.long, device=device)
    stopped = torch.zeros(size, dtype=torch.bool, device=device)
    rows = torch.arange(size, device=device)  # the rollouts still going
    temperatures = (
        torch.as_tensor(temperature, dtype=torch.float32, device=device)
        if isinstance(temperature, Sequence)
        else None
    )
    uniform = 1.0 if isinstance(temperature, Sequence) else temperature  # used only when not per goal
    every = stop_every or (1 if device.type == "cpu" else ACCELERATOR_STOP_EVERY)
    judged = 0  # states judged so far (per rollout still going)
    steps = horizon
    for step in range(horizon):
        scale = uniform if temperatures is None else temperatures[rows, None]
        action = pick_action(codec, codec.action_logits(decoder.last), greedy, scale, generator)
        if actions is None:
            actions = action.new_zeros((size, horizon, *action.shape[1:]))
        actions[rows, step] = action
        hidden = decoder.append(codec.embed_actions(action))
        state = codec.denormalize_states(codec.predict_states(hidden, observations[rows, step]))
        if project is not None:
            state = project(state, observations[rows, 0])
        observations[rows, step + 1] = state
        if stop is not None and ((step + 1) % every == 0 or step + 1 == horizon):
            ends = _first_stops(stop, observations[rows, : step + 2].cpu(), rows.cpu(), judged).to(device)
            judged = step + 1
            finished = ends > 0
            lengths[rows[finished]] = ends[finished]
            stopped[rows[finished]] = True
            if bool(finished.all()):
                steps = step + 1
                break
            if bool(finished.any()):
                going = ~finished
                rows, state = rows[going], state[going]
                decoder.keep(going)
        if step + 1 < horizon:
            decoder.append(codec.embed_states(state))
    assert actions is not None  # horizon >= 1 (checked above)
    return ImaginedRollouts(
        observations=observations[:, : steps + 1].cpu().numpy(),
        actions=actions[:, :steps].cpu().numpy(),
        lengths=lengths.cpu().numpy(),
        stopped=stopped.cpu().numpy(),
    )


def _first_stops(stop: StopFn, observations: Tensor, rows: Tensor, judged: int) -> Tensor:
    """For each rollout, the number of actions at its first stopping state among the states after the first
    ``judged`` ones (``observations [n, t + 1, obs_dim]`` on the host), or 0 where none stops."""
    ends = torch.zeros(len(rows), dtype=torch.long)
    for count in range(judged + 1, observations.shape[1]):
        open_ = ends == 0
        if not bool(open_.any()):
            break
        finished = stop(observations[open_, : count + 1], rows[open_])
        ends[open_.nonzero().squeeze(-1)[finished]] = count
    return ends


@torch.no_grad()
def explain(
    model: Any,
    observations: list[np.ndarray],
    actions: list[Any],
    *,
    max_new_tokens: int = 40,
    use_cache: bool = True,
) -> list[str]:
    """Greedy rollout -> goal decoding: one goal sentence per rollout."""
    device = next(model.parameters()).device
    examples = [
        model.prompts.explain_prompt(np.asarray(o), np.asarray(a))
        for o, a in zip(observations, actions, strict=True)
    ]
    batch = model.collate(examples, left_pad=True).to(device)
    decoder = Decoder(model, model.embed(batch), batch.attention_mask, batch.position_ids, use_cache)
    token_embeddings = model.backbone.get_input_embeddings()
    eos = model.prompts.eos_id
    tokens: list[Tensor] = []
    done = torch.zeros(len(examples), dtype=torch.bool, device=device)
    for _ in range(max_new_tokens):
        token = model.lm_head(decoder.last).argmax(-1)
        token = torch.where(done, torch.full_like(token, eos), token)
        tokens.append(token)
        done |= token == eos
        if bool(done.all()):
            break
        decoder.append(token_embeddings(token))
    ids = torch.stack(tokens, dim=1).cpu().tolist()
    texts = [model.tokenizer.decode(row[: row.index(eos)] if eos in row else row) for row in ids]
    return [text.strip().rstrip(".") for text in texts]


def pick_action(
    codec: Any, output: Tensor, greedy: bool, temperature: float | Tensor, generator: torch.Generator | None
) -> Tensor:
    """Actions from the action head's ``output``: argmax (discrete) or the regression (continuous) when
    ``greedy``, else a softmax sample at ``temperature`` or Gaussian noise of that scale in normalised
    units."""
    if codec.discrete:
        if greedy:
            return output.argmax(-1)
        probabilities = torch.softmax(output / temperature, dim=-1)
        return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)
    if not greedy:
        noise = torch.randn(output.shape, generator=generator, device=output.device)
        output = output + temperature * noise
    return codec.denormalize_actions(output)
