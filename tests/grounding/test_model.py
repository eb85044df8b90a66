"""GroundedLM math on the tiny backbone: losses per task, learning, decoding, persistence."""

import json

import numpy as np
import pytest
import torch

from kalm.grounding.codec import RolloutCodec
from kalm.grounding.model import CONFIG_FILE, GroundedLM
from kalm.grounding.prompts import Task


def batch_of(model, episodes, task, count=8):
    examples = [
        model.prompts.encode(
            task, goal=str(row["instruction"]), states=row["observations"], actions=row["actions"], step=0
        )
        for row in episodes[:count]
    ]
    return model.collate(examples)


def test_codec_normalisation_round_trip_and_embedding_scale():
    codec = RolloutCodec(obs_dim=3, action_dim=2, discrete=False, d_model=16, token_rms=0.5)
    codec.set_normalization(
        state_mean=torch.tensor([1.0, 2.0, 3.0]),
        state_std=torch.tensor([2.0, 1.0, 0.5]),
        action_mean=torch.zeros(2),
        action_std=torch.ones(2),
    )
    states = torch.randn(5, 3)
    torch.testing.assert_close(codec.denormalize_states(codec.normalize_states(states)), states)
    embedded = codec.embed_states(states)
    assert embedded.shape == (5, 1, 16)  # one token per state
    # the norm of a token embedding, not sqrt(d_model) times it: numeric slots must not drown the layers'
    # updates
    torch.testing.assert_close(embedded.norm(dim=-1), torch.full((5, 1), 0.5), rtol=1e-3, atol=1e-3)
    assert codec.embed_actions(torch.randn(5, 2)).shape == (5, 16)


BALLS = ["red", "blue", "green", "purple", "cyan"]


def test_object_tokens_embed_each_object_apart_at_token_scale():
    words = torch.randn(5, 16)
    codec = RolloutCodec(
        obs_dim=10, action_dim=40, discrete=True, d_model=16, token_rms=0.5, objects=BALLS, object_words=words
    )
    states = torch.randn(3, 10)
    embedded = codec.embed_states(states)
    assert embedded.shape == (3, 5, 16)
    torch.testing.assert_close(embedded.norm(dim=-1), torch.full((3, 5), 0.5), rtol=1e-3, atol=1e-3)
    # a ball's token depends on its own slice only, and on which ball it is
    moved = states.clone()
    moved[:, 2:4] += 1.0  # the blue ball
    changed = (codec.embed_states(moved) - embedded).norm(dim=-1) > 1e-4
    assert changed[:, 1].all() and not changed[:, [0, 2, 3, 4]].any()
    same_place = torch.zeros(1, 10)
    tokens = codec.embed_states(same_place)[0]
    assert (tokens[0] - tokens[1]).norm() > 0.1
    with pytest.raises(ValueError, match="multiple of the number of objects"):
        RolloutCodec(obs_dim=10, action_dim=40, discrete=True, d_model=16, objects=["a", "b", "c"])


def test_object_actions_score_each_balls_actions_against_its_identity():
    codec = RolloutCodec(
        obs_dim=10, action_dim=40, discrete=True, d_model=16, objects=BALLS, object_actions=True
    )
    torch.nn.init.zeros_(codec.action_head.weight)
    torch.nn.init.zeros_(codec.action_head.bias)
    hidden = torch.randn(3, 16)
    logits = codec.action_logits(hidden).reshape(3, 5, 8)
    expected = hidden @ codec.object_identity.detach().T
    torch.testing.assert_close(logits.detach(), expected[:, :, None].expand(3, 5, 8))
    plain = RolloutCodec(obs_dim=10, action_dim=40, discrete=True, d_model=16, objects=BALLS)
    torch.testing.assert_close(plain.action_logits(hidden), plain.action_head(hidden))
    with pytest.raises(ValueError, match="divide evenly"):
        RolloutCodec(obs_dim=10, action_dim=42, discrete=True, d_model=16, objects=BALLS, object_actions=True)
    with pytest.raises(ValueError, match="divide evenly"):
        RolloutCodec(obs_dim=10, action_dim=40, discrete=True, d_model=16, object_actions=True)


def factored_codec(**overrides):
    """A CLEVR-shaped codec (five balls, 8 pushes each) with object actions and factored action inputs."""
    settings = {"object_actions": True, "object_action_inputs": True, **overrides}
    return RolloutCodec(obs_dim=10, action_dim=40, discrete=True, d_model=16, objects=BALLS, **settings)


def test_object_action_inputs_embed_an_action_as_its_objects_identity_plus_its_kind():
    kinds = torch.randn(8, 16)
    codec = factored_codec(token_rms=0.5, action_words=kinds)
    torch.testing.assert_close(codec.action_kind.detach(), kinds)
    actions = torch.tensor([0, 3, 8 + 3, 39])  # red right, red front, blue front, cyan right front
    embedded = codec.embed_actions(actions)
    norm = torch.nn.functional.layer_norm
    assert codec.object_identity is not None
    parts = norm(codec.object_identity, (16,))[actions // 8] + norm(kinds, (16,))[actions % 8]
    torch.testing.assert_close(embedded, norm(parts, (16,)) * codec.embed_scale)  # the correction starts at 0
    torch.testing.assert_close(embedded.norm(dim=-1), torch.full((4,), 0.5), rtol=1e-3, atol=1e-3)
    # what red's pushes to the front teach reaches blue's: the kind's vector is shared
    (codec.embed_actions(torch.tensor([3])) * torch.randn(16)).sum().backward()
    assert codec.action_kind.grad is not None
    assert codec.action_kind.grad[3].abs().sum() > 0 and codec.action_kind.grad[[0, 1, 2, 4]].abs().sum() == 0
    with pytest.raises(ValueError, match="needs object_actions"):
        RolloutCodec(
            obs_dim=10, action_dim=40, discrete=True, d_model=16, objects=BALLS, object_action_inputs=True
        )
    with pytest.raises(ValueError, match=r"expected \(8, 16\)"):
        factored_codec(action_words=torch.randn(5, 16))


def test_action_kind_scores_add_each_kinds_score_to_its_actions_of_every_object():
    codec = factored_codec(action_kind_scores=True)
    torch.nn.init.zeros_(codec.action_head.weight)
    torch.nn.init.zeros_(codec.action_head.bias)
    hidden = torch.randn(3, 16)
    assert codec.object_identity is not None and codec.action_kind is not None
    logits = codec.action_logits(hidden).reshape(3, 5, 8).detach()
    ball = (hidden @ codec.object_identity.T).detach()
    kind = (hidden @ codec.action_kind.T).detach()
    torch.testing.assert_close(logits, ball[:, :, None] + kind[:, None, :])
    with pytest.raises(ValueError, match="needs object_action_inputs"):
        factored_codec(action_kind_scores=True, object_action_inputs=False)


DIRECTIONS = ["right", "behind", "left", "front", "right behind", "left behind", "left front", "right front"]
FACTORED = {
    "state_objects": BALLS,
    "object_actions": True,
    "object_action_inputs": True,
    "action_kinds": DIRECTIONS,
}


def test_factored_action_kinds_start_from_the_direction_names_and_survive_save_and_load(
    make_model, episodes, tmp_path
):
    model = make_model(**FACTORED, action_kind_scores=True, num_layers=1).eval()
    left = model.tokenizer(" left", add_special_tokens=False)["input_ids"]
    expected = model.backbone.get_input_embeddings()(torch.tensor(left)).mean(0)
    torch.testing.assert_close(model.codec.action_kind[2].detach(), expected.detach())
    loaded = GroundedLM.from_pretrained(model.save_pretrained(tmp_path / "factored"))
    assert loaded.codec.object_action_inputs and loaded.config.action_kinds == DIRECTIONS
    assert loaded.codec.action_kind_scores
    batch = batch_of(model, episodes, Task.ROLLOUT_TO_GOAL)
    torch.testing.assert_close(loaded(batch).loss, model(batch).loss)


def test_models_saved_before_factored_action_inputs_load_with_plain_action_embeddings(make_model, tmp_path):
    folder = make_model(state_objects=BALLS, object_actions=True, num_layers=1).save_pretrained(
        tmp_path / "old"
    )
    config = json.loads((folder / CONFIG_FILE).read_text())
    del config["object_action_inputs"], config["action_kinds"], config["action_kind_scores"]
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    loaded = GroundedLM.from_pretrained(folder)
    assert not loaded.codec.object_action_inputs and loaded.codec.action_kind is None


def test_object_action_scores_start_as_the_lms_logits_for_the_names(make_model):
    model = make_model(state_objects=BALLS, object_actions=True)
    ids = [model.tokenizer(f" {name}", add_special_tokens=False)["input_ids"] for name in BALLS]
    single = [k for k, tokens in enumerate(ids) if len(tokens) == 1]
    assert single, "the tiny tokenizer splits every colour name"
    torch.nn.init.zeros_(model.codec.action_head.weight)
    torch.nn.init.zeros_(model.codec.action_head.bias)
    hidden = torch.randn(4, model.codec.state_head.in_features)
    scores = model.codec.action_logits(hidden).reshape(4, 5, 8)[:, :, 0]
    lm = model.lm_head(hidden)  # tied embeddings: the LM head is the token embedding
    for k in single:
        torch.testing.assert_close(scores[:, k], lm[:, ids[k][0]], rtol=1e-4, atol=1e-4)


def test_object_tokens_start_from_the_names_embeddings_and_fill_one_slot_per_object(make_model, episodes):
    model = make_model(state_objects=BALLS)
    red = model.tokenizer(" red", add_special_tokens=False)["input_ids"]
    expected = model.backbone.get_input_embeddings()(torch.tensor(red)).mean(0)
    torch.testing.assert_close(model.codec.object_identity[0].detach(), expected.detach())
    plain = make_model()
    for task in Task:
        with_objects, one_token = (batch_of(m, episodes, task) for m in (model, plain))
        states = one_token.state_input_mask.sum()
        assert with_objects.state_input_mask.sum() == 5 * states
        assert with_objects.input_ids.shape[1] > one_token.input_ids.shape[1] or states == 0
        assert torch.isfinite(model(with_objects).loss)


@pytest.mark.parametrize(
    ("task", "parts"),
    [
        (Task.GOAL_TO_ROLLOUT, {"state", "action"}),
        (Task.DYNAMICS, {"state"}),
        (Task.CONSEQUENCE, {"state"}),
        (Task.ROLLOUT_TO_GOAL, {"text"}),
    ],
)
def test_each_task_trains_only_its_own_heads(make_model, episodes, task, parts):
    model = make_model(finetune="full")
    output = model(batch_of(model, episodes, task))
    values = {"state": output.state_loss, "action": output.action_loss, "text": output.text_loss}
    for name, value in values.items():
        assert (value.item() > 0) == (name in parts), name
    output.loss.backward()
    head = {"state": model.codec.state_head, "action": model.codec.action_head, "text": model.lm_head}
    for name in ("state", "action"):
        gradient = head[name].weight.grad
        assert (gradient is not None and gradient.abs().sum() > 0) == (name in parts), name


@pytest.mark.parametrize(("finetune", "tasks"), [("full", list(Task)), ("lora", [Task.GOAL_TO_ROLLOUT])])
def test_loss_falls_when_training_on_a_batch(make_model, episodes, finetune, tasks):
    # a random backbone's frozen, tied embeddings keep LoRA from learning text: LoRA is tested on rollouts
    model = make_model(finetune=finetune)
    examples = [
        model.prompts.encode(
            tasks[i % len(tasks)],
            goal=str(row["instruction"]),
            states=row["observations"],
            actions=row["actions"],
            step=0,
        )
        for i, row in enumerate(episodes[:16])
    ]
    batch = model.collate(examples)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(25):
        output = model(batch)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        losses.append(output.loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_lora_trains_adapters_and_codec_only(make_model):
    model = make_model(finetune="lora")
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name or name.startswith("codec.") for name in trainable)
    assert any(name.startswith("codec.") for name in trainable)


@pytest.mark.parametrize(
    "layout",
    [
        {},
        {"state_objects": BALLS, "object_actions": True},
        FACTORED,
        {"state_objects": BALLS, "object_relations": True},
    ],
)
def test_cached_and_uncached_decoding_give_the_same_rollouts(make_model, episodes, layout):
    model = make_model(**layout).eval()
    torch.nn.init.normal_(model.codec.state_head.weight, std=0.05)  # imagined states move, and feed back
    rows = episodes[:6]
    goals = [str(row["instruction"]) for row in rows]
    initial = np.stack([row["observations"][0] for row in rows])
    cached = model.generate_rollouts(goals, initial, horizon=12)
    uncached = model.generate_rollouts(goals, initial, horizon=12, use_cache=False)
    np.testing.assert_array_equal(cached.actions, uncached.actions)
    np.testing.assert_allclose(cached.observations, uncached.observations, atol=1e-5)
    assert cached.observations.shape == (6, 13, 10)
    np.testing.assert_array_equal(cached.observations[:, 0], initial)
    assert np.abs(np.diff(cached.observations, axis=1)).min(axis=-1).max() > 0


def test_untrained_residual_state_head_copies_the_latest_state(make_model, episodes):
    residual, absolute = make_model(), make_model(residual_states=False)
    for model in (residual, absolute):
        model.codec.set_normalization(state_mean=torch.full((10,), 0.1), state_std=torch.full((10,), 0.3))
    batch = batch_of(residual, episodes, Task.GOAL_TO_ROLLOUT)
    hidden = torch.randn(len(batch.state_references), residual.codec.state_head.in_features)
    torch.testing.assert_close(
        residual.codec.predict_states(hidden, batch.state_references),
        residual.codec.normalize_states(batch.state_references),
    )
    # the loss of an untrained residual head is the copy-the-last-state error, far below an absolute head's
    copy_error = ((batch.state_targets - batch.state_references) / residual.codec.state_std).pow(2).mean()
    torch.testing.assert_close(residual(batch).state_loss, copy_error)
    assert absolute(batch).state_loss > 2 * copy_error
    initial = np.stack([row["observations"][0] for row in episodes[:2]])
    imagined = residual.eval().generate_rollouts(["go"] * 2, initial, horizon=3).observations
    np.testing.assert_allclose(imagined, np.repeat(initial[:, None], 4, axis=1), atol=1e-6)


def test_sampling_is_seeded_and_differs_from_greedy(make_model, episodes):
    model = make_model().eval()
    goals = ["Push the red ball behind the blue ball"] * 8
    initial = np.stack([episodes[0]["observations"][0]] * 8)

    def sample(seed):
        return model.generate_rollouts(
            goals,
            initial,
            horizon=6,
            greedy=False,
            temperature=2.0,
            generator=torch.Generator().manual_seed(seed),
        ).actions

    np.testing.assert_array_equal(sample(1), sample(1))
    assert len({tuple(row) for row in sample(1)}) > 1  # rows of the same prompt diverge when sampling


def test_a_temperature_per_rollout_samples_each_row_at_its_own(make_model, episodes):
    model = make_model().eval()
    goals = ["Push the red ball behind the blue ball"] * 8
    initial = np.stack([episodes[0]["observations"][0]] * 8)

    def sample(temperature):
        return model.generate_rollouts(
            goals,
            initial,
            horizon=6,
            greedy=False,
            temperature=temperature,
            generator=torch.Generator().manual_seed(1),
        ).actions

    np.testing.assert_array_equal(
        sample([2.0] * 8), sample(2.0)
    )  # one value per row = the same value for all
    greedy = model.generate_rollouts(goals, initial, horizon=6).actions
    mixed = sample([1e-4] * 4 + [2.0] * 4)
    np.testing.assert_array_equal(mixed[:4], greedy[:4])  # a near-zero temperature is argmax
    assert len({tuple(row) for row in mixed[4:]}) > 1


@pytest.mark.parametrize("use_cache", [True, False])
def test_stop_callback_ends_each_rollout(make_model, episodes, use_cache):
    model = make_model().eval()
    torch.nn.init.normal_(model.codec.state_head.weight, std=0.05)  # imagined states move, and feed back
    stops = {0: 2, 1: 5}

    seen = []

    def stop(observations, rows):
        steps = observations.shape[1] - 1
        seen.append(rows.tolist())
        return torch.tensor([stops.get(row, 99) == steps for row in rows.tolist()])

    initial = np.stack([row["observations"][0] for row in episodes[:3]])
    goals = ["go", "push the red ball to the left", "go"]
    result = model.generate_rollouts(goals, initial, horizon=8, stop=stop, use_cache=use_cache)
    assert result.lengths.tolist() == [2, 5, 8] and result.stopped.tolist() == [True, True, False]
    assert seen == [[0, 1, 2]] * 2 + [[1, 2]] * 3 + [[2]] * 3  # finished rollouts leave the batch
    observations, actions = result.rollout(0)
    assert observations.shape == (3, 10) and actions.shape == (2,)
    # the rollouts that go on decode exactly as they would without the others stopping
    alone = model.generate_rollouts(goals, initial, horizon=8, use_cache=use_cache)
    np.testing.assert_array_equal(result.actions[2], alone.actions[2])
    np.testing.assert_allclose(result.observations[2], alone.observations[2], atol=1e-5)
    np.testing.assert_allclose(result.observations[1, :6], alone.observations[1, :6], atol=1e-5)


def test_explain_returns_one_sentence_per_rollout(make_model, episodes):
    model = make_model().eval()
    texts = model.explain(
        [row["observations"] for row in episodes[:3]],
        [row["actions"] for row in episodes[:3]],
        max_new_tokens=4,
    )
    assert len(texts) == 3 and all(isinstance(text, str) for text in texts)


@pytest.mark.parametrize("finetune", ["lora", "full"])
def test_save_and_load_restore_identical_outputs(make_model, episodes, tmp_path, finetune):
    model = make_model(finetune=finetune, num_layers=1)
    model.codec.set_normalization(state_mean=torch.full((10,), 0.1), state_std=torch.full((10,), 0.3))
    with torch.no_grad():  # move the weights away from their initial values
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01 * torch.randn_like(parameter))
    model.eval()
    loaded = GroundedLM.from_pretrained(model.save_pretrained(tmp_path / "grounded"))
    batch = batch_of(model, episodes, Task.GOAL_TO_ROLLOUT)
    torch.testing.assert_close(loaded(batch).loss, model(batch).loss)
    torch.testing.assert_close(loaded.codec.state_std, model.codec.state_std)
    assert loaded.config == model.config


def test_an_object_token_model_saves_and_loads(make_model, episodes, tmp_path):
    model = make_model(state_objects=BALLS, object_relations=True, num_layers=1).eval()
    loaded = GroundedLM.from_pretrained(model.save_pretrained(tmp_path / "objects"))
    assert loaded.config.state_objects == BALLS and loaded.codec.tokens_per_state == 5
    assert loaded.codec.object_relations
    batch = batch_of(model, episodes, Task.ROLLOUT_TO_GOAL)
    torch.testing.assert_close(loaded(batch).loss, model(batch).loss)


def test_models_saved_before_residual_states_load_with_absolute_heads(make_model, tmp_path):
    folder = make_model(residual_states=False, num_layers=1).save_pretrained(tmp_path / "old")
    config = json.loads((folder / CONFIG_FILE).read_text())
    del config["residual_states"]
    (folder / CONFIG_FILE).write_text(json.dumps(config))
    assert GroundedLM.from_pretrained(folder).config.residual_states is False


def test_object_relations_put_every_objects_offset_in_each_token():
    codec = RolloutCodec(
        obs_dim=10, action_dim=40, discrete=True, d_model=16, objects=BALLS, object_relations=True
    )
    states = torch.randn(4, 10)
    moved = states.clone()
    moved[:, 2:4] += 0.5  # the second ball moves: every ball sees it from a new offset
    assert ((codec.embed_states(moved) - codec.embed_states(states)).abs().sum(-1) > 1e-4).all()
    with pytest.raises(ValueError, match="needs objects"):
        RolloutCodec(obs_dim=10, action_dim=40, discrete=True, d_model=16, object_relations=True)
