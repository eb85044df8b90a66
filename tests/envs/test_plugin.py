"""An environment from outside kalm: the example plugin is built into a wheel in a temporary folder, put on
``sys.path`` and found through its ``kalm.envs`` entry point; ``kalm run --env grid`` then runs every stage
(collect, ground, imagine, learn, evaluate, report) through it on tiny settings."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kalm.cli import main
from kalm.envs import LEVELS, get_suite, registered_envs
from tests.envs.plugins import build_example_plugin

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The built plugin on ``sys.path`` for this module's tests (and gone afterwards)."""
    site = build_example_plugin(tmp_path_factory.mktemp("plugin"))
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(site))
        get_suite.cache_clear()
        yield site
    for name in [name for name in sys.modules if name == "kalm_grid" or name.startswith("kalm_grid.")]:
        del sys.modules[name]
    get_suite.cache_clear()


def test_kalm_envs_lists_the_plugin_with_its_package(plugin_site, capsys):
    assert main(["envs"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert set(lines) >= {"clevr", "metaworld", "grid"}
    assert lines["grid"].split()[1:4] == ["kalm-grid", "0.1.0", "kalm_grid/Grid-v0"]
    assert "train 13 goals / 39 sentences" in lines["grid"] and "hard 5 goals / 10 sentences" in lines["grid"]
    assert lines["clevr"].split()[1] == "kalm"
    suite = get_suite("grid")
    assert Path(sys.modules[type(suite).__module__].__file__).is_relative_to(plugin_site)  # the wheel's copy


def test_a_fresh_interpreter_finds_the_plugin_and_lists_it_for_unknown_names(plugin_site):
    result = subprocess.run(
        [sys.executable, "-m", "kalm", "collect", "--env", "gird"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(plugin_site), "PATH": ""},
        cwd=plugin_site,
    )
    assert result.returncode == 2
    registered = ", ".join(sorted(registered_envs()))  # kalm's own and the plugin
    assert "grid" in registered.split(", ")
    assert result.stderr == f"kalm: error: unknown environment 'gird'; registered: {registered}\n"


def test_kalm_run_goes_through_every_stage_of_the_plugin(plugin_site, hub, tmp_path):
    from kalm.grounding.hub import load_grounded
    from kalm.hub.datasets import pull_dataset

    argv = [
        "run",
        "--config",
        str(ROOT / "configs/run/quick.yaml"),
        "--env",
        "grid",
        "--name",
        "grid",
        "--out",
        str(tmp_path),
        "--hub_endpoint",
        hub.url,
        "--org",
        "plugin",
        "--collect.episodes",
        "60",
        "--ground.trainer.max_steps",
        "4",
        "--ground.trainer.val_check_interval",
        "4",
        "--ground.model.explain_episodes",
        "2",
        "--ground.model.match_goals",
        "1",
        "--imagine.horizon",
        "4",
        "--learn.trainer.max_steps",
        "20",
        "--evaluate.episodes",
        "4",
        "--evaluate.gifs",
        "0",
    ]
    assert main(argv) == 0
    report = json.loads((tmp_path / "grid/report.json").read_text())
    assert report["env"] == "grid"
    for policy in ("baseline", "kalm"):  # every level of the plugin's goals evaluated in its environment
        results = report["evaluation"]["results"][policy]
        assert {level: results[level]["episodes"] for level in LEVELS} == dict.fromkeys(LEVELS, 4)

    real = pull_dataset("plugin/kalm-grid-real")
    assert len(real.dataset) == 60 and set(real.dataset["env"]) == {"grid"}
    assert real.info["rollout_spec"] == {"obs_dim": 2, "action_dim": 4, "discrete": True, "horizon": 12}
    grounded = load_grounded(report["grounding"]["repo_id"])
    config = grounded.model.config
    assert (config.obs_dim, config.action_dim, config.discrete) == (2, 4, True)
    imaginary = pull_dataset(report["imaginary"]["repo_id"])
    assert set(imaginary.dataset["source"]) == {"imaginary"}
    assert set(imaginary.dataset["level"]) <= {"rephrase", "easy", "hard"}
    goals = {goal.id for level in ("rephrase", "easy", "hard") for goal in get_suite("grid").goals(level)}
    assert set(imaginary.dataset["goal_id"]) <= goals
