"""``kalm run --config configs/run/<preset>.yaml [--section.key value ...]``."""

from __future__ import annotations

import dataclasses

from jsonargparse import ActionConfigFile, ArgumentParser

from kalm.pipeline.config import RunConfig


def parse(argv: list[str]) -> RunConfig:
    """The run configuration from a preset file and overrides (``RunConfig`` defaults otherwise)."""
    parser = ArgumentParser(
        prog="kalm run",
        parser_mode="omegaconf",
        description="The whole KALM pipeline: collect, ground, imagine, learn, evaluate, report.",
    )
    parser.add_argument("--config", action=ActionConfigFile, help="a preset, e.g. configs/run/default.yaml")
    parser.add_class_arguments(RunConfig)
    namespace = parser.instantiate_classes(parser.parse_args(argv))
    return RunConfig(
        **{field.name: getattr(namespace, field.name) for field in dataclasses.fields(RunConfig)}
    )


def main(argv: list[str]) -> int:
    from kalm.pipeline.run import run_pipeline

    run_pipeline(parse(argv))
    return 0
