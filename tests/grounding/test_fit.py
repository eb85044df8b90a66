"""``kalm ground fit`` on the tiny config: trains, logs the paper's metrics, checkpoints, resumes."""

from pathlib import Path

import pytest
import torch

from kalm.cli import main

CONFIG = Path(__file__).resolve().parents[2] / "configs/ground/clevr_tiny.yaml"


def fit(data, root, *extra):
    argv = [
        "ground",
        "fit",
        "--config",
        str(CONFIG),
        "--data.dataset",
        str(data),
        "--trainer.default_root_dir",
        str(root),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.logger",
        "lightning.pytorch.loggers.CSVLogger",
        "--trainer.logger.save_dir",
        str(root),
        *extra,
    ]
    assert main(argv) == 0


def test_fit_trains_logs_metrics_and_resumes(clevr_real, tmp_path):
    fit(clevr_real, tmp_path, "--trainer.max_steps", "10", "--trainer.val_check_interval", "10")
    metrics = (tmp_path / "lightning_logs/version_0/metrics.csv").read_text()
    header = metrics.splitlines()[0].split(",")
    for name in (
        "train/loss",
        "val/loss",
        "val/action_acc",
        "val/explanation_accuracy",
        "val/match_rate/train",
        "val/match_rate/rephrase",
        "val/match_rate/easy",
        "val/match_rate/hard",
        "val/rollout_to_goal/text_loss",
    ):
        assert name in header, name
    checkpoint_path = next((tmp_path / "lightning_logs/version_0/checkpoints").glob("*.ckpt"))
    checkpoint = torch.load(checkpoint_path, weights_only=False)
    assert checkpoint["global_step"] == 10
    assert checkpoint["state_dict"]["model.codec.state_std"].min() > 0.1  # trained with the data's statistics
    fit(
        clevr_real,
        tmp_path,
        "--trainer.max_steps",
        "14",
        "--trainer.val_check_interval",
        "4",
        "--ckpt_path",
        str(checkpoint_path),
    )
    resumed = next((tmp_path / "lightning_logs/version_1/checkpoints").glob("*.ckpt"))
    assert torch.load(resumed, weights_only=False)["global_step"] > 10  # saved at a validation after step 10
    rows = (tmp_path / "lightning_logs/version_1/metrics.csv").read_text().splitlines()
    step = rows[0].split(",").index("step")
    assert min(int(row.split(",")[step]) for row in rows[1:]) >= 9  # continued (a restart logs from step 0)


def test_object_tokens_and_actions_train_with_one_token_per_ball(clevr_real, tmp_path):
    from kalm.envs.clevr.physics import BALL_COLORS

    fit(
        clevr_real,
        tmp_path,
        "--model.object_tokens",
        "true",
        "--model.object_actions",
        "true",
        "--trainer.max_steps",
        "4",
        "--trainer.val_check_interval",
        "4",
    )
    checkpoint_path = next((tmp_path / "lightning_logs/version_0/checkpoints").glob("*.ckpt"))
    state = torch.load(checkpoint_path, weights_only=False)["state_dict"]
    assert state["model.codec.object_identity"].shape[0] == len(BALL_COLORS)
    config = torch.load(checkpoint_path, weights_only=False)["hyper_parameters"]
    assert config["object_tokens"] and config["object_actions"]


@pytest.mark.parametrize(("env", "tokens", "actions"), [("clevr", 5, True), ("metaworld", 1, False)])
def test_auto_object_tokens_follow_what_the_environment_declares(env, tokens, actions):
    from datamodules.rollout_goal import RolloutGoalDataModule
    from kalm.grounding.module import GroundingModule

    module = GroundingModule(
        backbone="tiny-llama",
        env=env,
        object_tokens="auto",
        object_actions="auto",
        object_relations="auto",
        object_action_inputs="auto",
        action_kind_scores="auto",
    )
    codec = module.model.codec
    assert codec.tokens_per_state == tokens and codec.object_actions is actions
    assert codec.object_action_inputs is actions  # factored inputs wherever the actions are scored factored
    assert codec.action_kind_scores is actions
    kinds = module.model.config.action_kinds
    assert kinds == (
        ["right", "behind", "left", "front", "right behind", "left behind", "left front", "right front"]
        if actions
        else []
    )
    assert codec.object_relations is (tokens > 1)  # relations wherever there are object tokens
    data = RolloutGoalDataModule(dataset="unused", env=env, backbone="tiny-llama", object_tokens="auto")
    assert data.state_tokens == tokens


def test_object_tokens_need_an_environment_made_of_named_objects():
    from kalm.errors import ConfigError
    from kalm.grounding.module import GroundingModule

    with pytest.raises(ConfigError, match="declares none"):
        GroundingModule(backbone="tiny-llama", env="metaworld", object_tokens=True)
    from datamodules.rollout_goal import RolloutGoalDataModule

    with pytest.raises(ConfigError, match="declares none"):
        RolloutGoalDataModule(dataset="kalm/kalm-metaworld-real", env="metaworld", object_tokens=True)
    with pytest.raises(ConfigError, match="object_tokens is False"):
        GroundingModule(backbone="tiny-llama", env="clevr", object_actions=True)
    with pytest.raises(ConfigError, match="object_action_inputs=True needs object_actions"):
        GroundingModule(backbone="tiny-llama", env="clevr", object_tokens=True, object_action_inputs=True)
    with pytest.raises(ConfigError, match="action_kind_scores=True needs object_action_inputs"):
        GroundingModule(backbone="tiny-llama", env="clevr", object_tokens=True, action_kind_scores=True)
    with pytest.raises(ConfigError, match="object_relations=True needs object tokens"):
        GroundingModule(backbone="tiny-llama", env="metaworld", object_tokens="auto", object_relations=True)
