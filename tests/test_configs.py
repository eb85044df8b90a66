"""Every file under ``configs/`` parses through the parser of the command it is written for.

Parsing validates each key against the command's signature (a key the command does not take, a value of the
wrong type, or a class path that does not import fails here), without running the stage: the LightningCLI
trees are built with ``run=False`` and their classes left uninstantiated.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonargparse import ActionConfigFile, ArgumentParser

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def configs(stage: str) -> list[Path]:
    return sorted((CONFIGS / stage).glob("*.yaml"))


def test_every_config_folder_is_covered():
    assert {folder.name for folder in CONFIGS.iterdir() if folder.is_dir()} == {
        "collect",
        "evaluate",
        "ground",
        "imagine",
        "learn",
        "run",
    }
    assert all(configs(stage) for stage in ("collect", "evaluate", "ground", "imagine", "learn", "run"))


def function_parser(function) -> ArgumentParser:
    parser = ArgumentParser(parser_mode="omegaconf", exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_function_arguments(function)
    return parser


@pytest.mark.parametrize(
    "path",
    configs("collect") + configs("imagine") + configs("evaluate"),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_stage_function_configs_parse(path):
    from kalm.cli import collect, imagine
    from kalm.rl.cli import evaluate

    function = {"collect": collect, "imagine": imagine, "evaluate": evaluate}[path.parent.name]
    parsed = function_parser(function).parse_args(["--config", str(path)])
    assert parsed.env in {"clevr", "metaworld", "babyai"}  # every shipped config names its environment


def parse_only(cli_class, model_class, data_class, path: Path):
    class ParseOnly(cli_class):
        def instantiate_classes(self) -> None:  # validate the config against the signatures, build nothing
            return None

    return ParseOnly(
        model_class,
        data_class,
        args=["--config", str(path)],
        run=False,
        parser_kwargs={"parser_mode": "omegaconf", "exit_on_error": False},
    ).config


@pytest.mark.parametrize("path", configs("ground"), ids=lambda path: path.name)
def test_ground_configs_parse(path):
    from datamodules.rollout_goal import RolloutGoalDataModule
    from kalm.grounding.cli import GroundingCLI
    from kalm.grounding.module import GroundingModule

    config = parse_only(GroundingCLI, GroundingModule, RolloutGoalDataModule, path)
    assert config.model.env == config.data.env and config.model.backbone == config.data.backbone


@pytest.mark.parametrize("path", configs("learn"), ids=lambda path: path.name)
def test_learn_configs_parse(path):
    from lightning.pytorch.cli import LightningCLI

    from datamodules.transitions import TransitionDataModule
    from kalm.rl.module import OfflineRLModule

    config = parse_only(LightningCLI, OfflineRLModule, TransitionDataModule, path)
    assert config.model.algorithm in path.stem and config.data.real.repo_or_path


@pytest.mark.parametrize("path", configs("run"), ids=lambda path: path.name)
def test_run_presets_parse_to_their_own_values(path):
    import yaml

    from kalm.pipeline.cli import parse

    config = parse(["--config", str(path)])
    written = yaml.safe_load(path.read_text())
    assert config.name == written["name"] and config.env == written.get("env", "clevr")
    for section in ("collect", "ground", "imagine", "learn", "evaluate"):
        for key, value in (written.get(section) or {}).items():
            assert getattr(getattr(config, section), key) == value, f"{section}.{key}"
