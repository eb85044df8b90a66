"""The ``kalm`` command line: one entry point that dispatches each subcommand to its recipe's ``main(argv)``.

The recipes live in ``kalm.commands`` (``collect``, ``envs``, ``imagine``: jsonargparse functions, each
accepting ``--config FILE``; ``ground`` and ``learn``: LightningCLI trees; ``evaluate``), ``kalm run`` in
``kalm.pipeline.cli`` and ``kalm hub`` in ``kalm.hub.cli``. A user error (``KalmError``) prints one line and
exits 2.
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings
from collections.abc import Callable

from kalm import LOGGERS
from kalm.commands import user_error
from kalm.commands.collect import collect
from kalm.commands.imagine import imagine
from kalm.errors import KalmError

__all__ = ["COMMANDS", "collect", "imagine", "main"]  # collect, imagine: the recipes, as before the move

COMMANDS = {
    "run": "kalm.pipeline.cli:main",
    "collect": "kalm.commands.collect:main",
    "ground": "kalm.commands.ground:main",
    "imagine": "kalm.commands.imagine:main",
    "learn": "kalm.commands.learn:main",
    "evaluate": "kalm.commands.evaluate:main",
    "hub": "kalm.hub.cli:main",
    "envs": "kalm.commands.envs:main",
}
"""Subcommand -> ``module:function`` taking the remaining arguments and returning the exit status."""
USAGE = """usage: kalm <command> [--config FILE] [options]   (kalm <command> --help for its options)

commands:
  run       the whole KALM pipeline: collect, ground, imagine, learn, evaluate, report
  collect   collect real rollouts of training goals with the behaviour policy
  ground    ground an LLM in an environment (LightningCLI: fit | validate)
  imagine   imagine rollouts for novel goals with a grounded LM, filter and publish them
  learn     train an offline-RL policy (LightningCLI: fit)
  evaluate  success rate of policies per goal level in the real environment
  hub       the dataset hub: serve | ls | push | pull | tags | mirror | fsck
  envs      list the registered environments (plugins) with their packages and goal counts
"""


def command(name: str) -> Callable[[list[str]], int]:
    """The ``main`` of subcommand ``name``, imported only now (a command loads only what it uses)."""
    module, _, function = COMMANDS[name].partition(":")
    main: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
    return main


def _configure_logging() -> None:
    import datasets
    from huggingface_hub.utils import disable_progress_bars

    datasets.disable_progress_bars()  # kalm shows its own bars; the per-file bars of datasets and
    disable_progress_bars()  # huggingface_hub's downloads are noise here
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kalm`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(USAGE, end="", file=sys.stderr)
        print(
            f"kalm: error: unknown command {argv[0]!r}; expected one of {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    _configure_logging()
    # ``kalm ground|learn`` hand LightningCLI the subcommand's arguments and leave sys.argv as launched
    # (Lightning's DDP launcher re-runs it for the other local ranks); LightningCLI warns whenever both are
    # set
    warnings.filterwarnings(
        "ignore", message="LightningCLI's args parameter is intended to run from within Python"
    )
    try:
        return command(argv[0])(argv[1:])
    except KalmError as error:
        return user_error(error)
