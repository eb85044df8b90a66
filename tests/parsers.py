"""Parse a ``kalm`` command's arguments with the command's own parser, without running it."""

from __future__ import annotations

from typing import Any

from jsonargparse import ActionConfigFile, ArgumentParser


def function_parser(function: Any) -> ArgumentParser:
    """The jsonargparse parser of a function command (``kalm collect``, ``kalm evaluate``); errors raise."""
    parser = ArgumentParser(parser_mode="omegaconf", exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_function_arguments(function)
    return parser


def lightning_parse(cli_class: Any, model_class: Any, data_class: Any, argv: list[str]) -> Any:
    """``argv`` checked by a LightningCLI tree against the classes' signatures, nothing built."""

    class ParseOnly(cli_class):
        def instantiate_classes(self) -> None:
            return None

    return ParseOnly(
        model_class,
        data_class,
        args=argv,
        run=False,
        parser_kwargs={"parser_mode": "omegaconf", "exit_on_error": False},
    ).config
