"""The TorchRL learners without a Trainer: losses fall, delayed updates, discounting, terminals, errors."""

from __future__ import annotations

import pytest
import torch

from datamodules.transitions import TransitionDataModule
from kalm.errors import ConfigError, UnknownNameError
from kalm.rl.learners import DEFAULTS, make_learner
from kalm.rl.networks import NetworkConfig

SMALL = NetworkConfig((64, 64))
# (algorithm, discrete, steps, the loss term that must fall besides the objective)
CASES = [
    ("bc", True, 100, "loss_bc"),
    ("cql", True, 100, "loss_cql"),
    ("iql", True, 300, "loss_qvalue"),  # CLEVR rewards reach 100: the critic needs more steps
    ("bc", False, 100, "loss_bc"),
    ("cql", False, 100, "loss_cql"),
    ("iql", False, 100, "loss_qvalue"),
    ("td3bc", False, 100, "loss_qvalue"),
    ("awac", False, 100, "loss_qvalue"),
]


@pytest.fixture(scope="module")
def batches(clevr_real, continuous_real, embedding_cache):
    """One fixed batch of real CLEVR transitions and one of the synthetic continuous task."""
    out = {}
    for discrete, folder in ((True, clevr_real), (False, continuous_real)):
        dm = TransitionDataModule(real=str(folder), batch_size=128, embedding_cache=embedding_cache, seed=1)
        dm.setup("fit")
        out[discrete] = (next(iter(dm.train_dataloader())), dm.spec, dm.goal_dim)
    return out


def train(learner, batch, steps):
    optimizer = torch.optim.Adam(learner.param_groups)
    history = []
    for step in range(steps):
        losses = learner.loss(batch.copy())
        objective = learner.objective(losses, step)
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        learner.update_targets(step)
        history.append(
            {"objective": objective.item(), **{k: v.item() for k, v in losses.items() if v.ndim == 0}}
        )
    return history


@pytest.mark.parametrize(("algorithm", "discrete", "steps", "key"), CASES)
def test_each_learners_loss_falls_on_a_tiny_dataset(batches, algorithm, discrete, steps, key):
    torch.manual_seed(0)
    batch, spec, goal_dim = batches[discrete]
    fast = {name: 1e-3 for name in DEFAULTS[algorithm] if name.endswith("lr")}  # tiny nets, few steps
    if algorithm == "cql" and not discrete:
        fast["num_random"] = 4
    learner = make_learner(
        algorithm,
        obs_dim=spec.obs_dim,
        goal_dim=goal_dim,
        action_dim=spec.action_dim,
        discrete=discrete,
        network=SMALL,
        hyper=fast,
    )
    history = train(learner, batch, steps)
    first, last = ({k: sum(h[k] for h in part) / 5 for k in part[0]} for part in (history[:5], history[-5:]))
    assert last["objective"] < first["objective"]
    assert last[key] < first[key] - 0.1 * abs(first[key]), (key, first[key], last[key])


def test_td3bc_updates_the_actor_every_second_step_only(batches):
    batch, spec, goal_dim = batches[False]
    learner = make_learner(
        "td3bc",
        obs_dim=spec.obs_dim,
        goal_dim=goal_dim,
        action_dim=spec.action_dim,
        discrete=False,
        network=SMALL,
    )
    optimizer = torch.optim.Adam(learner.param_groups)
    changed = []
    for step in range(4):
        before = [p.detach().clone() for p in learner.policy.parameters()]
        objective = learner.objective(learner.loss(batch.copy()), step)
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        changed.append(
            any(not torch.equal(a, b) for a, b in zip(before, learner.policy.parameters(), strict=True))
        )
    assert changed == [True, False, True, False]


def test_td_targets_use_gamma_and_stop_only_at_terminals(batches):
    batch, spec, goal_dim = batches[True]
    batch = batch[:4].clone()
    batch["next", "terminated"] = torch.tensor([[True], [False], [False], [True]])
    batch["next", "done"] = torch.tensor([[True], [True], [False], [True]])  # row 1: a truncation
    learner = make_learner(
        "cql",
        obs_dim=spec.obs_dim,
        goal_dim=goal_dim,
        action_dim=spec.action_dim,
        discrete=True,
        network=SMALL,
        gamma=0.9,
    )
    with torch.no_grad():
        next_q = learner.policy.net(batch["next", "observation"]).max(-1).values
        target = learner.loss.value_estimator.value_estimate(batch.copy()).squeeze(-1)
    reward = batch["next", "reward"].squeeze(-1)
    expected = reward + 0.9 * next_q * torch.tensor([0.0, 1.0, 1.0, 0.0])
    torch.testing.assert_close(target, expected)


def test_policy_shares_the_trained_parameters(batches):
    batch, spec, goal_dim = batches[True]
    learner = make_learner(
        "bc",
        obs_dim=spec.obs_dim,
        goal_dim=goal_dim,
        action_dim=spec.action_dim,
        discrete=True,
        network=SMALL,
    )
    untrained = (learner.policy(batch["observation"]) == batch["action"]).float().mean().item()
    train(learner, batch, 200)
    trained = (learner.policy(batch["observation"]) == batch["action"]).float().mean().item()
    assert untrained < 0.2 < 0.5 < trained  # the policy acts with the weights the loss trained


def test_configuration_errors_are_clear():
    with pytest.raises(UnknownNameError, match="unknown offline RL algorithm 'sac'; expected one of bc, cql"):
        make_learner("sac", obs_dim=2, goal_dim=2, action_dim=2, discrete=False)
    with pytest.raises(ConfigError, match="td3bc needs continuous actions"):
        make_learner("td3bc", obs_dim=2, goal_dim=2, action_dim=2, discrete=True)
    with pytest.raises(ConfigError, match="iql has no hyperparameter 'alpha'; valid: actor_lr"):
        make_learner("iql", obs_dim=2, goal_dim=2, action_dim=2, discrete=False, hyper={"alpha": 1.0})
    with pytest.raises(ConfigError, match="gamma=1.5 is invalid"):
        make_learner("cql", obs_dim=2, goal_dim=2, action_dim=2, discrete=True, gamma=1.5)
