"""Prompt layout: numeric slots, predicting positions and text targets, from the tokenizer in use."""

import numpy as np
import pytest

from kalm.grounding.prompts import PromptEncoder, Task


@pytest.fixture
def encoder(tokenizer):
    return PromptEncoder(tokenizer)


def test_goal_to_rollout_layout(encoder, rollout):
    states, actions, goal = rollout
    example = encoder.encode(Task.GOAL_TO_ROLLOUT, goal=goal, states=states, actions=actions)
    length = len(actions)
    assert len(example.state_inputs) == length + 1 and len(example.action_inputs) == length
    # s0 a0 s1 a1 ... sT occupy consecutive positions after the text
    first = example.state_inputs[0][0]
    positions = sorted([p for p, _ in example.state_inputs] + [p for p, _ in example.action_inputs])
    assert positions == list(range(first, first + 2 * length + 1))
    assert positions[-1] == len(example.input_ids) - 1
    # every action and every state after s0 is a target, predicted from the position before it
    assert [p for p, _ in example.action_targets] == [p - 1 for p, _ in example.action_inputs]
    assert [p for p, _ in example.state_targets] == [p - 1 for p, _ in example.state_inputs[1:]]
    np.testing.assert_array_equal(example.state_targets[-1][1], states[-1])
    # each state's reference (for a residual head) is the state before it
    np.testing.assert_array_equal(np.stack(example.state_references), states[:-1])
    assert not example.text_targets
    text = encoder.tokenizer.decode(example.input_ids[:first])
    assert text.endswith(f"Instruction: {goal.rstrip('.')}.\nTrajectory:")


def test_rollout_to_goal_targets_the_goal_tokens_and_eos(encoder, rollout):
    states, actions, goal = rollout
    example = encoder.encode(Task.ROLLOUT_TO_GOAL, goal=goal, states=states, actions=actions)
    tokens = [token for _, token in example.text_targets]
    assert tokens[-1] == encoder.eos_id
    assert encoder.tokenizer.decode(tokens[:-1]) == f" {goal.rstrip('.')}."
    assert all(example.input_ids[p + 1] == token for p, token in example.text_targets)
    assert not example.state_targets and not example.action_targets
    assert len(example.state_inputs) == len(states)


def test_dynamics_and_consequence_target_one_state(encoder, rollout):
    states, actions, goal = rollout
    dynamics = encoder.encode(Task.DYNAMICS, goal=goal, states=states, actions=actions, step=2)
    assert [p for p, _ in dynamics.state_inputs][1] - 1 == dynamics.state_targets[0][0]
    np.testing.assert_array_equal(dynamics.state_targets[0][1], states[3])
    np.testing.assert_array_equal(dynamics.state_references[0], states[2])
    assert dynamics.action_inputs[0][1] == actions[2] and not dynamics.action_targets
    consequence = encoder.encode(Task.CONSEQUENCE, goal=goal, states=states, actions=actions)
    np.testing.assert_array_equal(consequence.state_inputs[0][1], states[0])
    np.testing.assert_array_equal(consequence.state_targets[0][1], states[-1])
    np.testing.assert_array_equal(consequence.state_references[0], states[0])
    assert goal.rstrip(".") in encoder.tokenizer.decode(consequence.input_ids)


def test_generation_prompts_are_prefixes_of_training_examples(encoder, rollout):
    states, actions, goal = rollout
    full = encoder.encode(Task.GOAL_TO_ROLLOUT, goal=goal, states=states, actions=actions)
    prompt = encoder.goal_prompt(goal, states[0])
    assert full.input_ids[: len(prompt.input_ids)] == prompt.input_ids
    explained = encoder.encode(Task.ROLLOUT_TO_GOAL, goal=goal, states=states, actions=actions)
    prefix = encoder.explain_prompt(states, actions)
    assert explained.input_ids[: len(prefix.input_ids)] == prefix.input_ids
    assert explained.text_targets[0][0] == len(prefix.input_ids) - 1


def test_collate_orders_values_like_the_masks(make_model, episodes):
    model = make_model()
    examples = [
        model.prompts.encode(
            Task(i % 4),
            goal="Push the red ball behind the blue ball",
            states=row["observations"],
            actions=row["actions"],
            step=0,
        )
        for i, row in enumerate(episodes[:6])
    ]
    for left_pad in (False, True):
        batch = model.collate(examples, left_pad=left_pad)
        rows = batch.state_input_mask.nonzero()[:, 0].tolist()
        expected = [i for i, example in enumerate(examples) for _ in example.state_inputs]
        assert rows == expected
        values = [value for example in examples for _, value in example.state_inputs]
        np.testing.assert_array_equal(batch.state_inputs.numpy(), np.asarray(values, dtype=np.float32))
        assert batch.attention_mask.sum().item() == sum(len(e.input_ids) for e in examples)
