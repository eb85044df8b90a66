"""The dynamics ensemble fitted to real CLEVR-Robot pushes, and the check it puts on imagined rollouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kalm.data import read_rollouts
from kalm.data.transitions import episodes_to_transitions
from kalm.envs import get_suite
from kalm.envs.clevr.specs import parse_spec
from kalm.errors import ConfigError
from kalm.rl.dynamics import DynamicsConfig, DynamicsEnsemble, confirmed

SMALL = DynamicsConfig(members=3, hidden=128, steps=1500)


@pytest.fixture(scope="module")
def clevr_split(clevr_real):
    """The 300 real episodes: 250 to fit on, the last 50 held out."""
    dataset = read_rollouts(clevr_real)
    return dataset.select(range(250)), dataset.select(range(250, len(dataset)))


@pytest.fixture(scope="module")
def fitted(clevr_split):
    suite = get_suite("clevr")
    model = DynamicsEnsemble(suite.spec.obs_dim, suite.spec.action_dim, discrete=True, config=SMALL, seed=0)
    losses = model.fit(episodes_to_transitions(clevr_split[0], suite.spec), seed=0)
    return model, losses


def test_the_ensemble_predicts_held_out_pushes(fitted, clevr_split):
    model, losses = fitted
    assert losses[-1] < losses[0] / 3
    held = episodes_to_transitions(clevr_split[1], get_suite("clevr").spec)
    states = held.states[held.obs_index]
    after = held.states[held.obs_index + 1]
    predicted = model.step(
        torch.from_numpy(states).expand(3, -1, -1), torch.from_numpy(held.actions).expand(3, -1)
    ).numpy()
    error = np.abs(predicted - after).max(axis=-1)  # [members, transitions], the worst coordinate
    unchanged = np.abs(states - after).max(axis=-1)
    assert np.median(error) < 0.2 * np.median(unchanged)


def test_confirmed_keeps_real_rollouts_and_refutes_actions_that_cannot_reach_the_goal(fitted, clevr_split):
    model, _ = fitted
    suite = get_suite("clevr")
    rows = [row for row in clevr_split[1].with_format("numpy") if row["success"]]
    assert len(rows) >= 20
    kept = confirmed(model, suite, rows)
    assert kept.mean() >= 0.7
    # the same rollouts, labelled successful, but every push moves a ball the goal does not name away
    rng = np.random.default_rng(0)
    wrong = []
    for row in rows:
        named = parse_spec(str(row["goal_id"])).balls
        other = next(ball for ball in range(5) if ball not in named)
        actions = other * 8 + rng.integers(0, 8, len(row["actions"]))
        wrong.append({**row, "actions": actions})
    assert confirmed(model, suite, wrong).mean() <= 0.1


def test_members_differ_and_fitting_is_seeded(clevr_split):
    suite = get_suite("clevr")
    arrays = episodes_to_transitions(clevr_split[0], suite.spec)
    config = DynamicsConfig(members=2, hidden=32, steps=20)
    first, second = (DynamicsEnsemble(10, 40, discrete=True, config=config, seed=seed) for seed in (1, 1))
    assert first.fit(arrays, seed=1) == second.fit(arrays, seed=1)
    weights = first.weights[0].detach()
    assert not torch.equal(weights[0], weights[1])


def test_bad_settings_name_the_problem():
    with pytest.raises(ConfigError, match=r"dynamics members=0 is invalid; expected a positive integer"):
        DynamicsConfig(members=0)
    with pytest.raises(ConfigError, match=r"dynamics lr=0.0 is invalid"):
        DynamicsConfig(lr=0.0)


def test_the_data_module_drops_the_imaginary_rollouts_the_check_refutes(
    clevr_split, tmp_path, embedding_cache
):
    from datamodules.transitions import TransitionDataModule
    from kalm.data import rollouts_to_dataset, write_rollouts

    suite = get_suite("clevr")
    rows = [row for row in clevr_split[1].with_format("numpy") if row["success"]][:20]
    imagined = []
    for index, row in enumerate(rows):  # odd rollouts: the same label, but pushes of a ball the goal leaves
        other = next(ball for ball in range(5) if ball not in parse_spec(str(row["goal_id"])).balls)
        actions = row["actions"] if index % 2 == 0 else other * 8 + 0 * row["actions"]
        imagined.append(
            {**row, "episode_id": index, "source": "imaginary", "level": "rephrase", "actions": actions}
        )
    real = write_rollouts(clevr_split[0], tmp_path / "real", env="clevr", spec=suite.spec)
    folder = write_rollouts(
        rollouts_to_dataset(imagined, suite.spec), tmp_path / "imag", env="clevr", spec=suite.spec
    )

    def kept(check: str) -> set[int]:
        dm = TransitionDataModule(
            real=str(real),
            imaginary=[str(folder)],
            imaginary_successful_only=True,
            imaginary_check=check,
            dynamics={"members": 3, "hidden": 128, "steps": 1500},
            embedding_cache=embedding_cache,
        )
        dm.setup("fit")
        pool = dm.pools["imaginary"]
        starts = {tuple(state) for state in pool.states[pool.obs_index].tolist()}
        return {i for i, row in enumerate(imagined) if tuple(row["observations"][0].tolist()) in starts}

    assert kept("none") == set(range(20))
    checked = kept("dynamics")
    assert len(checked & set(range(0, 20, 2))) >= 7  # most real action sequences are confirmed
    assert not checked & set(range(1, 20, 2))  # no refuted one is left
    with pytest.raises(ConfigError, match=r"imaginary_check='replay' is invalid; expected one of \('none'"):
        TransitionDataModule(real=str(real), imaginary_check="replay")
