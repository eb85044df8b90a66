import subprocess
import sys

from kalm.cli import main
from kalm.data import read_info, read_rollouts
from kalm.envs import registered_envs


def test_envs_lists_clevr_with_goal_counts(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "kalm/CLEVR-Robot-v0" in out and "train 80 goals / 1440 sentences" in out


def test_collect_writes_a_readable_dataset(tmp_path, capsys):
    out = tmp_path / "real"
    assert main(["collect", "--episodes", "12", "--out", str(out), "--progress", "false"]) == 0
    assert len(read_rollouts(out)) == 12
    assert "episodes      12" in capsys.readouterr().out


def test_collect_with_hindsight_says_how_many_rows_are_copies(tmp_path, capsys):
    out = tmp_path / "relabelled"
    assert (
        main(["collect", "--episodes", "12", "--hindsight", "2", "--out", str(out), "--progress", "false"])
        == 0
    )
    rows = len(read_rollouts(out))
    copies = read_info(out)["provenance"]["hindsight_copies"]
    assert rows == 12 + copies and copies > 0
    assert f"episodes      {rows} ({copies} of them hindsight copies)" in capsys.readouterr().out


def test_flags_may_use_dashes(tmp_path):
    out = tmp_path / "dashed"
    assert (
        main(
            ["collect", "--episodes", "3", "--out", str(out), "--random-fraction", "0.0", "--progress=false"]
        )
        == 0
    )
    assert len(read_rollouts(out)) == 3


def test_collect_reads_a_config_file(tmp_path):
    config = tmp_path / "collect.yaml"
    config.write_text(f"env: clevr\nepisodes: 5\nout: {tmp_path / 'from-config'}\nprogress: false\n")
    assert main(["collect", "--config", str(config)]) == 0
    assert len(read_rollouts(tmp_path / "from-config")) == 5


def test_user_errors_print_one_line_and_exit_2():
    result = subprocess.run(
        [sys.executable, "-m", "kalm", "collect", "--env", "atari"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    registered = ", ".join(sorted(registered_envs()))
    assert {"clevr", "metaworld"} <= set(registered.split(", "))
    assert result.stderr == f"kalm: error: unknown environment 'atari'; registered: {registered}\n"


def test_help_lists_every_command(capsys):
    assert main(["--help"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert listed == {"run", "collect", "ground", "imagine", "learn", "evaluate", "hub", "envs"}
    assert main([]) == 2


def test_every_command_dispatches_to_a_main_and_unknown_ones_exit_2(capsys):
    from kalm.cli import COMMANDS, command

    assert all(callable(command(name)) for name in COMMANDS)
    assert main(["atari"]) == 2
    assert "kalm: error: unknown command 'atari'; expected one of run, collect" in capsys.readouterr().err


def test_kalm_imagine_takes_the_run_sections_settings_with_their_defaults():
    """``kalm imagine``'s decoding options are ``ImagineSettings``' fields, as ``kalm run``'s ``imagine``
    section."""
    from kalm.commands.imagine import parser
    from kalm.envs import NOVEL_LEVELS
    from kalm.imagine.settings import DEFAULT_PER_GOAL, ImagineSettings
    from kalm.pipeline.config import parse

    defaults = parser().parse_args(["--model", "m"])
    assert (
        defaults.levels == list(NOVEL_LEVELS)
        and defaults.per_goal == DEFAULT_PER_GOAL
        and not defaults.greedy
    )
    assert parser().parse_args(["--model", "m", "--levels", "[easy, hard]"]).levels == ["easy", "hard"]
    run = parse([]).imagine
    assert {name: defaults[name] for name in vars(run)} == vars(ImagineSettings()) == vars(run)
