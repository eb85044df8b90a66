"""Every file under ``configs/`` parses through the parser of the command it is written for.

Parsing validates each key against the command's signature (a key the command does not take, a value of the
wrong type, or a class path that does not import fails here), without running the stage: the LightningCLI
trees are built with ``run=False`` and their classes left uninstantiated.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.parsers import function_parser, lightning_parse

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


@pytest.mark.parametrize(
    "path",
    configs("collect") + configs("imagine") + configs("evaluate"),
    ids=lambda path: f"{path.parent.name}/{path.name}",
)
def test_stage_function_configs_parse(path):
    from kalm.commands import imagine
    from kalm.commands.collect import collect
    from kalm.commands.evaluate import evaluate

    parser = {
        "collect": lambda: function_parser(collect),
        "imagine": imagine.parser,
        "evaluate": lambda: function_parser(evaluate),
    }[path.parent.name]()
    parsed = parser.parse_args(["--config", str(path)])
    assert parsed.env in {"clevr", "metaworld", "babyai"}  # every shipped config names its environment


@pytest.mark.parametrize("path", configs("ground"), ids=lambda path: path.name)
def test_ground_configs_parse(path):
    from datamodules.rollout_goal import RolloutGoalDataModule
    from kalm.commands.ground import GroundingCLI
    from kalm.grounding.module import GroundingModule

    config = lightning_parse(GroundingCLI, GroundingModule, RolloutGoalDataModule, ["--config", str(path)])
    assert config.model.env == config.data.env and config.model.backbone == config.data.backbone


@pytest.mark.parametrize("path", configs("learn"), ids=lambda path: path.name)
def test_learn_configs_parse(path):
    from lightning.pytorch.cli import LightningCLI

    from datamodules.transitions import TransitionDataModule
    from kalm.rl.module import OfflineRLModule

    config = lightning_parse(LightningCLI, OfflineRLModule, TransitionDataModule, ["--config", str(path)])
    assert config.model.algorithm in path.stem and config.data.real.repo_or_path


@pytest.mark.parametrize("path", configs("run"), ids=lambda path: path.name)
def test_run_presets_parse_to_their_own_values(path):
    import yaml

    from kalm.pipeline.config import parse

    config = parse(["--config", str(path)])
    written = yaml.safe_load(path.read_text())
    assert config.name == written["name"] and config.env == written.get("env", "clevr")
    for section in ("collect", "ground", "imagine", "learn", "evaluate"):
        for key, value in _leaves(written.get(section) or {}):
            parsed = _lookup(getattr(config, section), key)
            assert (list(parsed) if isinstance(parsed, tuple) else parsed) == value, f"{section}.{key}"


@pytest.mark.parametrize("path", configs("run"), ids=lambda path: path.name)
def test_run_presets_read_objects_only_where_their_environment_names_them(path):
    """A preset that turns object tokens on names an environment that declares objects; otherwise its
    grounding stage would refuse to start (``"auto"``, the default, follows the environment)."""
    from kalm.envs import get_suite
    from kalm.pipeline.config import parse

    config = parse(["--config", str(path)])
    suite, model = get_suite(config.env), config.ground.model
    layout = suite.state_layout(model["object_tokens"])  # a one-line ConfigError where it names none
    if model["object_actions"] is True:
        assert layout and suite.object_major_actions, config.env


def _leaves(tree: dict, prefix: str = ""):
    for key, value in tree.items():
        if isinstance(value, dict) and key in ("model", "data", "trainer"):  # a Lightning stage's sections
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def _lookup(section, dotted: str):
    head, _, rest = dotted.partition(".")
    value = section[head] if isinstance(section, dict) else getattr(section, head)
    return _lookup(value, rest) if rest else value


@pytest.mark.parametrize(
    ("stage", "path"),
    [("ground", path) for path in configs("ground")] + [("learn", path) for path in configs("learn")],
    ids=lambda item: getattr(item, "name", item),
)
def test_a_stage_config_pastes_into_a_run_section(stage, path, tmp_path):
    """The model and data sections of ``kalm ground``/``kalm learn`` configs mean the same in ``kalm run``'s
    ``ground``/``learn`` section (less what the run links itself: environment, datasets, seed)."""
    import yaml

    from kalm.pipeline.config import LINKED, parse

    written = yaml.safe_load(path.read_text())
    sections = {
        part: {key: value for key, value in written[part].items() if key not in LINKED[f"{stage}.{part}"]}
        for part in ("model", "data")
    }
    preset = tmp_path / "run.yaml"
    preset.write_text(yaml.safe_dump({"name": "pasted", stage: sections}))
    config = getattr(parse(["--config", str(preset)]), stage)
    for part, values in sections.items():
        for key, value in values.items():
            parsed = getattr(config, part)[key]
            assert (list(parsed) if isinstance(parsed, tuple) else parsed) == value, f"{stage}.{part}.{key}"


@pytest.mark.parametrize(
    ("argv", "new"),
    [
        (["--learn.steps", "5"], "learn.trainer.max_steps"),
        (["--learn.imaginary_ratio=0.5"], "learn.data.real_fraction"),
        (["--ground.backbone", "gpt2"], "ground.model.backbone"),
        (["--ground.batch_size", "8"], "ground.data.batch_size"),
        (["--ground.max_steps", "8"], "ground.trainer.max_steps"),
        (["--collect.dataset", "kalm/kalm-clevr-real@v1.0"], "collect.pull"),
        (["--ground.model", "kalm/kalm-clevr-grounded-smollm2-135m-8l@v1.0"], "ground.pull"),
    ],
)
def test_a_renamed_run_key_fails_naming_the_new_one(argv, new, tmp_path):
    from kalm.errors import ConfigError
    from kalm.pipeline.config import parse

    with pytest.raises(ConfigError, match=rf"{re.escape(new)}") as raised:
        parse(argv)
    assert "\n" not in str(raised.value)
    preset = tmp_path / "old.yaml"  # the same key in a preset file
    key, value = argv[0].removeprefix("--").partition("=")[::2] if "=" in argv[0] else (argv[0][2:], argv[1])
    section, _, name = key.partition(".")
    preset.write_text(f"{section}:\n  {name}: {value}\n")
    with pytest.raises(ConfigError, match=rf"{re.escape(new)}"):
        parse(["--config", str(preset)])
