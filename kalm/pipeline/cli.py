"""``kalm run --config configs/run/<preset>.yaml [--section.key value ...]``."""

from __future__ import annotations

from kalm.pipeline.config import RunConfig, parse

__all__ = ["RunConfig", "main", "parse"]


def main(argv: list[str]) -> int:
    from kalm.pipeline.run import run_pipeline

    run_pipeline(parse(argv))
    return 0
