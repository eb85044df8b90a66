"""OfflineRLModule in a real Trainer: BC recovers the scripted policy; checkpoints resume; policies export."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from datamodules.transitions import TransitionDataModule
from kalm.collect import run_episode
from kalm.data import rollouts_to_dataset, write_rollouts
from kalm.errors import ConfigError
from kalm.rl.evaluation import evaluate_policy
from kalm.rl.module import OfflineRLModule
from kalm.rl.policy import load_policy

GOAL = "red-left-of-blue"


def trainer(tmp_path, max_steps: int, **kwargs) -> L.Trainer:
    return L.Trainer(
        max_steps=max_steps,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def one_goal_data(tmp_path_factory):
    """150 behaviour-policy episodes (10 % random actions) of the training goal red-left-of-blue."""
    from kalm.envs import get_suite

    suite = get_suite("clevr")
    env, rows = suite.make(), []
    for index in range(150):
        rng = np.random.default_rng([11, index])
        policy = suite.behaviour_policy(noise=0.1, rng=rng)
        rows.append(
            run_episode(env, policy, goal_id=GOAL, reset_seed=index, episode_id=index, env_name="clevr")
        )
    dataset = rollouts_to_dataset(rows, suite.spec)
    return write_rollouts(dataset, tmp_path_factory.mktemp("one-goal") / "real", env="clevr", spec=suite.spec)


def test_bc_recovers_the_scripted_policy_on_an_easy_training_goal(one_goal_data, embedding_cache, tmp_path):
    torch.manual_seed(0)
    dm = TransitionDataModule(
        real=str(one_goal_data), batch_size=100, steps_per_epoch=500, embedding_cache=embedding_cache
    )
    module = OfflineRLModule(algorithm="bc", export_dir=str(tmp_path / "policy"))
    trainer(tmp_path, 600).fit(module, datamodule=dm)
    results = evaluate_policy(
        module.policy, "clevr", dm.encoder, levels=["train"], episodes=30, seed=5, goals=[GOAL], num_envs=6
    )
    assert results["train"].rate >= 0.8, results["train"]
    exported = load_policy(tmp_path / "policy")  # on_fit_end wrote the policy folder
    assert (
        exported.algorithm == "bc"
        and exported.env == "clevr"
        and exported.goal_encoder == dm.encoder.model_id
    )
    observation = torch.randn(16, 10 + dm.goal_dim)
    assert torch.equal(exported.policy(observation), module.policy(observation))


def test_checkpoints_resume_training_where_it_stopped(clevr_real, embedding_cache, tmp_path):
    def run(max_steps, ckpt_path=None):
        dm = TransitionDataModule(
            real=str(clevr_real), batch_size=32, steps_per_epoch=10, embedding_cache=embedding_cache
        )
        module = OfflineRLModule(
            algorithm="cql",
            hidden=[32, 32],
            hyper={"target_update_interval": 5},
            export_dir=str(tmp_path / "policy"),
        )
        fit = L.Trainer(
            max_steps=max_steps,
            default_root_dir=tmp_path,
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[
                L.pytorch.callbacks.ModelCheckpoint(tmp_path / "ckpt", save_last=True, every_n_train_steps=10)
            ],
        )
        fit.fit(module, datamodule=dm, ckpt_path=ckpt_path)
        return fit, module

    first, _ = run(20)
    assert first.global_step == 20 and (tmp_path / "ckpt" / "last.ckpt").exists()
    second, module = run(30, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert second.global_step == 30 and second.current_epoch == 3
    reloaded = OfflineRLModule.load_from_checkpoint(tmp_path / "ckpt" / "last.ckpt")
    observation = torch.randn(8, 10 + reloaded.hparams.goal_dim)
    assert torch.equal(reloaded.policy(observation), module.policy(observation))


def test_continuous_learners_train_in_lightning(
    continuous_real, continuous_imaginary, embedding_cache, tmp_path
):
    dm = TransitionDataModule(
        real=str(continuous_real),
        imaginary=[str(continuous_imaginary)],
        batch_size=64,
        steps_per_epoch=20,
        embedding_cache=embedding_cache,
    )
    for algorithm in ("td3bc", "awac"):
        module = OfflineRLModule(algorithm=algorithm, hidden=[32, 32], export_dir=str(tmp_path / algorithm))
        trainer(tmp_path, 20).fit(module, datamodule=dm)
        action = module.policy(torch.zeros(4, 6 + dm.goal_dim))
        assert action.shape == (4, 3) and bool((action.abs() <= 1).all())
        assert load_policy(tmp_path / algorithm).policy.spec.head == module.policy.spec.head


def test_module_without_data_or_sizes_says_what_it_needs():
    module = OfflineRLModule(algorithm="iql")
    with pytest.raises(ConfigError, match="the policy is built in setup"):
        _ = module.policy
    with pytest.raises(ConfigError, match="iql has no hyperparameter 'beta'"):
        OfflineRLModule(algorithm="iql", hyper={"beta": 1.0})


def test_evaluation_callback_logs_success_per_level_every_n_steps(clevr_real, embedding_cache, tmp_path):
    from kalm.rl.callbacks import EvaluationCallback

    dm = TransitionDataModule(
        real=str(clevr_real),
        batch_size=16,
        steps_per_epoch=6,
        batches_per_step=2,
        embedding_cache=embedding_cache,
    )
    module = OfflineRLModule(algorithm="bc", hidden=[16], export_dir=str(tmp_path / "policy"))
    callback = EvaluationCallback(every_n_steps=4, levels=["easy"], episodes=2, num_envs=2)
    fit = trainer(tmp_path, 10, callbacks=[callback])
    fit.fit(module, datamodule=dm)
    assert [step for step, _ in callback.history] == [4, 8, 10]  # every 4 updates, and at the end
    assert all(0.0 <= rates["easy"] <= 1.0 for _, rates in callback.history)
    assert "eval/success_rate/easy" in fit.callback_metrics


def test_losses_are_logged_on_every_row_the_trainer_writes(clevr_real, embedding_cache, tmp_path):
    dm = TransitionDataModule(
        real=str(clevr_real), batch_size=16, steps_per_epoch=6, embedding_cache=embedding_cache
    )
    module = OfflineRLModule(algorithm="bc", hidden=[16], export_dir=str(tmp_path / "policy"))
    logger = L.pytorch.loggers.CSVLogger(tmp_path, name="")
    fit = L.Trainer(
        max_steps=12,
        log_every_n_steps=4,  # not a divisor of the 6-item epochs: the count runs across epochs
        logger=logger,
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    fit.fit(module, datamodule=dm)
    with open(Path(logger.log_dir) / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["step"]) for row in rows] == [3, 7, 11]
    assert all(row["train/loss"] == row["train/loss_bc"] and row["train/imaginary_fraction"] for row in rows)
    assert len({row["train/loss"] for row in rows}) == 3  # each row holds its own step's loss


def test_cpu_batches_reach_the_module_without_a_copy(clevr_real, embedding_cache):
    dm = TransitionDataModule(real=str(clevr_real), batch_size=8, embedding_cache=embedding_cache)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    module = OfflineRLModule(
        algorithm="bc", hidden=[16], obs_dim=10, goal_dim=dm.goal_dim, action_dim=40, discrete=True
    )
    assert module.transfer_batch_to_device(batch, torch.device("cpu"), 0) is batch


class _Recording(OfflineRLModule):
    """Records, at every item, the module's logging decision and Lightning's private one it mirrors."""

    decisions: list[tuple[bool, bool]]

    def training_step(self, batch, batch_idx):
        self.decisions.append((self._writes_logs(), bool(self.trainer._logger_connector.should_update_logs)))
        return super().training_step(batch, batch_idx)


@pytest.mark.parametrize("every", [1, 4, 5])
def test_the_logging_cadence_is_lightnings_across_epochs_and_the_last_item(
    clevr_real, embedding_cache, every, tmp_path
):
    """Fails when Lightning changes the rule under ``OfflineRLModule._writes_logs`` (its private
    connector's)."""
    dm = TransitionDataModule(
        real=str(clevr_real),
        batch_size=8,
        steps_per_epoch=3,
        batches_per_step=2,
        embedding_cache=embedding_cache,
    )
    module = _Recording(algorithm="bc", hidden=[16], export_dir=str(tmp_path / "policy"))
    module.decisions = []
    fit = L.Trainer(
        max_steps=14,  # 7 items of 2 updates, over 3 epochs of 3 items
        log_every_n_steps=every,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    fit.fit(module, datamodule=dm)
    ours, lightnings = zip(*module.decisions, strict=True)
    assert len(ours) == 7 and ours == lightnings
    assert [i + 1 for i, written in enumerate(ours) if written] == [n for n in range(1, 8) if n % every == 0]
