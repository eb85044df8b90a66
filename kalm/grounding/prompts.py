"""Prompt layouts of the four grounding tasks, built from the tokenizer in use (reference §3.2).

An example is a sequence of pieces: text (tokenised), numeric slots (a state or an action, whose input
embedding comes from the codec instead of a token) and target text. Every element that is learned
is predicted from the hidden state one position before it, as for next-token prediction, so an encoded
example records, for each target, the *predicting* position.

Per task: the prompt (slots in angle brackets), then the targets.

- goal -> rollout:
  Translate the textual instruction to state/action trajectory.\\nInstruction: {goal}.\\nTrajectory:
  <s0> <a0> <s1> ... <sT>
  -- every action, every state after s0
- dynamics:
  ... Current state is <st>, after executing action <at>, we get next state <st+1>.
  -- s(t+1)
- consequence:
  Initial state is <s0>, after completing the instruction "{goal}", we get terminal state <sT>.
  -- sT
- rollout -> goal:
  Translate the state/action trajectory to textual instruction.\\nTrajectory: <s0> ... <sT>\\nInstruction:
  {goal}.<eos>
  -- the goal's tokens and EOS
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from typing import Any

import numpy as np

from kalm.backbones import leading_special_tokens
from kalm.errors import ConfigError


class Task(IntEnum):
    """The grounding tasks; values index per-task weights and metrics."""

    GOAL_TO_ROLLOUT = 0
    DYNAMICS = 1
    CONSEQUENCE = 2
    ROLLOUT_TO_GOAL = 3


TASK_NAMES = {task: task.name.lower() for task in Task}

GOAL_TO_ROLLOUT_PREFIX = (
    "Translate the textual instruction to state/action trajectory.\nInstruction: {goal}.\nTrajectory:"
)
ROLLOUT_TO_GOAL_PREFIX = "Translate the state/action trajectory to textual instruction.\nTrajectory:"
ROLLOUT_TO_GOAL_INFIX = "\nInstruction:"
DYNAMICS_TEXT = (
    "You are an expert in identifying dynamics change in the environment. Current state is",
    ", after executing action",
    ", we get next state",
    ".",
)
CONSEQUENCE_TEXT = (
    "Initial state is",
    ', after completing the instruction "{goal}", we get terminal state',
    ".",
)

TEXT, STATE, ACTION = 0, 1, 2


@dataclass
class EncodedExample:
    """One example as token ids plus numeric slots and targets (positions index ``input_ids``).

    ``state_inputs``/``action_inputs`` are (position, value) pairs whose embeddings replace the token's (a
    state fills ``state_tokens`` positions from its own: one per object of an object-token codec);
    ``state_targets``/``action_targets``/``text_targets`` are (predicting position, value) pairs;
    ``state_references`` holds, for each state target, the latest state before it in the example (a
    residual state head predicts the change from it).
    """

    task: Task
    state_tokens: int = 1
    input_ids: list[int] = field(default_factory=list)
    state_inputs: list[tuple[int, np.ndarray]] = field(default_factory=list)
    action_inputs: list[tuple[int, Any]] = field(default_factory=list)
    state_targets: list[tuple[int, np.ndarray]] = field(default_factory=list)
    state_references: list[np.ndarray] = field(default_factory=list)
    action_targets: list[tuple[int, Any]] = field(default_factory=list)
    text_targets: list[tuple[int, int]] = field(default_factory=list)


class PromptEncoder:
    """Encodes grounding examples with a tokenizer (text pieces are tokenised once and cached)."""

    def __init__(self, tokenizer: Any, *, state_tokens: int = 1) -> None:
        self.tokenizer = tokenizer
        self.state_tokens = state_tokens
        if tokenizer.eos_token_id is None:
            raise ConfigError(
                f"tokenizer {type(tokenizer).__name__} has no EOS token; rollout->goal needs one"
            )
        self.eos_id: int = tokenizer.eos_token_id
        self.pad_id: int = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        self.bos: list[int] = leading_special_tokens(tokenizer)
        self._tokens = lru_cache(maxsize=65536)(self._tokenize)

    def _tokenize(self, text: str) -> tuple[int, ...]:
        return tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(
        self, task: Task, *, goal: str = "", states: np.ndarray, actions: Any, step: int = 0
    ) -> EncodedExample:
        """Encode one training example of ``task`` from a rollout's ``T + 1`` states and ``T`` actions.

        ``step`` selects the transition of the dynamics task.
        """
        goal = goal.rstrip(". ")
        example = EncodedExample(task, self.state_tokens)
        self._text(example, "")  # BOS, if the tokenizer uses one
        if task is Task.GOAL_TO_ROLLOUT:
            self._text(example, GOAL_TO_ROLLOUT_PREFIX.format(goal=goal))
            self._rollout(example, states, actions, learn=True)
        elif task is Task.ROLLOUT_TO_GOAL:
            self._text(example, ROLLOUT_TO_GOAL_PREFIX)
            self._rollout(example, states, actions, learn=False)
            self._text(example, ROLLOUT_TO_GOAL_INFIX)
            self._target_text(example, f" {goal}.")
        elif task is Task.DYNAMICS:
            intro, after_state, after_action, end = DYNAMICS_TEXT
            self._text(example, intro)
            self._state(example, states[step], learn=False)
            self._text(example, after_state)
            self._action(example, actions[step], learn=False)
            self._text(example, after_action)
            self._state(example, states[step + 1], learn=True)
            self._text(example, end)
        else:
            intro, middle, end = CONSEQUENCE_TEXT
            self._text(example, intro)
            self._state(example, states[0], learn=False)
            self._text(example, middle.format(goal=goal))
            self._state(example, states[-1], learn=True)
            self._text(example, end)
        return example

    def goal_prompt(self, goal: str, initial_state: np.ndarray) -> EncodedExample:
        """The goal -> rollout prompt up to and including the initial state (generation starts here)."""
        example = EncodedExample(Task.GOAL_TO_ROLLOUT, self.state_tokens)
        self._text(example, "")
        self._text(example, GOAL_TO_ROLLOUT_PREFIX.format(goal=goal.rstrip(". ")))
        self._state(example, initial_state, learn=False)
        return example

    def explain_prompt(self, states: np.ndarray, actions: Any) -> EncodedExample:
        """The rollout -> goal prompt up to "Instruction:" (the goal text is generated after it)."""
        example = EncodedExample(Task.ROLLOUT_TO_GOAL, self.state_tokens)
        self._text(example, "")
        self._text(example, ROLLOUT_TO_GOAL_PREFIX)
        self._rollout(example, states, actions, learn=False)
        self._text(example, ROLLOUT_TO_GOAL_INFIX)
        return example

    def _text(self, example: EncodedExample, text: str) -> None:
        if not example.input_ids:
            example.input_ids.extend(self.bos)
        example.input_ids.extend(self._tokens(text) if text else ())

    def _target_text(self, example: EncodedExample, text: str) -> None:
        for token in (*self._tokens(text), self.eos_id):
            example.text_targets.append((len(example.input_ids) - 1, token))
            example.input_ids.append(token)

    def _state(self, example: EncodedExample, state: np.ndarray, *, learn: bool) -> None:
        position = len(example.input_ids)
        if learn:
            if not example.state_inputs:
                raise ValueError("a learned state needs an earlier state in its example (its reference)")
            example.state_targets.append((position - 1, state))
            example.state_references.append(example.state_inputs[-1][1])
        example.state_inputs.append((position, state))
        example.input_ids.extend([self.pad_id] * self.state_tokens)

    def _action(self, example: EncodedExample, action: Any, *, learn: bool) -> None:
        position = len(example.input_ids)
        if learn:
            example.action_targets.append((position - 1, action))
        example.action_inputs.append((position, action))
        example.input_ids.append(self.pad_id)

    def _rollout(self, example: EncodedExample, states: np.ndarray, actions: Any, *, learn: bool) -> None:
        self._state(example, states[0], learn=False)
        for action, state in zip(actions, states[1:], strict=True):
            self._action(example, action, learn=learn)
            self._state(example, state, learn=learn)
