"""README's code blocks against the code they describe.

Every ``kalm`` command line of a shell block is parsed by the very parser of its command (a flag, key or value
the command does not take fails here, without running the stage); the shell block that talks to a local hub
server runs as written; every name a Python block imports exists. The two quick-start commands are checked by
``tests/test_readme.py``.
"""

from __future__ import annotations

import ast
import importlib
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.parsers import function_parser, lightning_parse

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = [
    (match.group(1), match.group(2), README[: match.start()].count("\n") + 1)
    for match in re.finditer(r"```(\w*)\n(.*?)```", README, re.S)
]


def shell_commands() -> list[tuple[int, list[str]]]:
    """``(line, argv)`` of every ``kalm`` command in README's bash blocks (continuations joined, comments
    cut)."""
    found = []
    for language, body, line in BLOCKS:
        if language != "bash":
            continue
        for command in _commands(body):
            words = shlex.split(command, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value prefixes
                words = words[1:]
            if words and words[0] in ("kalm", ".venv/bin/kalm") and not command.rstrip().endswith("&"):
                found.append((line, words[1:]))
    return found


def _commands(body: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, a quoted argument spanning lines kept
    whole."""
    commands, pending = [], ""
    for line in body.replace("\\\n", " ").splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        commands.append(pending)
        pending = ""
    return commands


COMMANDS = shell_commands()


def test_readme_names_every_command():
    assert {argv[0] for _, argv in COMMANDS} >= {
        "run",
        "ground",
        "learn",
        "imagine",
        "evaluate",
        "collect",
        "hub",
        "envs",
    }


def parse_command(argv: list[str]) -> None:
    """Parse ``kalm <argv>`` with its command's parser, as ``kalm`` would, without running it."""
    from kalm.commands import underscore_flags

    command, args = (
        argv[0],
        [ROOT.joinpath(a).as_posix() if a.startswith("configs/") else a for a in argv[1:]],
    )
    if command == "run":
        from kalm.pipeline.config import parse

        parse(args)
    elif command in ("ground", "learn"):
        assert args and args[0] in ("fit", "validate"), argv
        if command == "ground":
            from datamodules.rollout_goal import RolloutGoalDataModule
            from kalm.commands.ground import GroundingCLI
            from kalm.grounding.module import GroundingModule

            lightning_parse(GroundingCLI, GroundingModule, RolloutGoalDataModule, args[1:])
        else:
            from datamodules.transitions import TransitionDataModule
            from kalm.commands.learn import LearnCLI
            from kalm.rl.module import OfflineRLModule

            lightning_parse(LearnCLI, OfflineRLModule, TransitionDataModule, args[1:])
    elif command == "imagine":
        from kalm.commands.imagine import parser

        parser().parse_args(underscore_flags(args))
    elif command in ("collect", "evaluate"):
        module = importlib.import_module(f"kalm.commands.{command}")
        function_parser(getattr(module, command)).parse_args(underscore_flags(args))
    elif command == "hub":
        from kalm.hub.cli import build_parser

        build_parser().parse_args(args)
    elif command == "envs":
        assert not args, argv
    else:
        raise AssertionError(f"README names an unknown command: kalm {command}")


@pytest.mark.parametrize(
    ("line", "argv"), COMMANDS, ids=[f"README:{line}:{argv[0]}" for line, argv in COMMANDS]
)
def test_every_readme_command_parses(line, argv):
    parse_command(argv)


def test_a_renamed_flag_in_a_command_fails_the_check():  # the check above can fail
    from kalm.errors import ConfigError

    with pytest.raises(ConfigError, match="learn.trainer.max_steps"):
        parse_command(["run", "--learn.steps", "5"])
    with pytest.raises(Exception, match="no_such_option"):
        parse_command(["collect", "--no_such_option", "1"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_raw_hf_client_block_runs_against_a_local_server(tmp_path):
    """README's "any HF client" block, as written (its port swapped for a free one, the server's root a temp
    folder), with the project's ``kalm`` and ``python``."""
    [block] = [body for language, body, _ in BLOCKS if language == "bash" and "HfApi()" in body]
    port = _free_port()
    bin_dir = Path(sys.executable).parent
    script = block.replace("8765", str(port)).replace(
        "kalm hub serve", f"{bin_dir / 'kalm'} hub serve --root {tmp_path / 'hub'}"
    )
    script = script.replace("python -c", f"{sys.executable} -c")
    wait = (
        f"for i in $(seq 100); do {sys.executable} -c "
        '\'import socket; socket.create_connection(("127.0.0.1", '
        f"{port}))' 2>/dev/null && break; sleep 0.2; done"
    )
    first, rest = script.split("\n", 1)
    result = subprocess.run(
        ["bash", "-ec", f"{first}\nserver=$!\ntrap 'kill $server' EXIT\n{wait}\n{rest}"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "hub").is_dir()


def python_imports() -> list[tuple[int, str, str]]:
    """``(line, module, name)`` of every ``from M import N`` of README's Python blocks (and ``python -c``
    code)."""
    found = []
    for language, body, line in BLOCKS:
        if language != "python":
            continue
        for node in ast.walk(ast.parse(body.replace("...", "pass"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                found += [(line, node.module, alias.name) for alias in node.names]
    return found


@pytest.mark.parametrize(
    ("line", "module", "name"),
    python_imports(),
    ids=[f"README:{line}:{module}.{name}" for line, module, name in python_imports()],
)
def test_every_name_a_python_block_imports_exists(line, module, name):
    assert hasattr(importlib.import_module(module), name), f"README line {line}: {module}.{name}"
