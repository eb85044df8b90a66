"""The recipes of the ``kalm`` subcommands, one module each; ``kalm.cli`` only dispatches to their ``main``.

Recipe code wires the library to the data modules: together with ``kalm.pipeline`` and ``kalm.cli`` it is the
only code that imports ``datamodules`` (``tests/test_layering.py``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from kalm.errors import KalmError


def user_error(error: KalmError) -> int:
    """Print a user error as one line (no traceback) and return the exit status 2."""
    print(f"kalm: error: {error}", file=sys.stderr)
    return 2


def print_summary(title: str, summary: dict[str, Any], seconds: float) -> None:
    """The summary of a rollout dataset (``kalm.data.summarize``) written by ``collect`` or ``imagine``."""
    print(title)
    copies = int(summary.get("hindsight_copies", 0))
    of_them = f" ({copies} of them hindsight copies)" if copies else ""
    print(f"  episodes      {summary['episodes']}{of_them}")
    print(f"  transitions   {summary['transitions']}")
    print(f"  success rate  {summary['success_rate']:.3f}")
    print(f"  mean length   {summary['mean_length']:.2f}")
    print(f"  levels        {json.dumps(summary['levels'])}")
    rate = (summary["episodes"] - copies) / max(seconds, 1e-9)
    print(f"  time          {seconds:.1f} s ({rate:.0f} episodes/s)")


def underscore_flags(argv: list[str]) -> list[str]:
    """Accept ``--per-goal`` as well as ``--per_goal`` (jsonargparse names flags after the parameters)."""

    def fix(token: str) -> str:
        if not token.startswith("--"):
            return token
        name, sep, value = token.partition("=")
        return "--" + name[2:].replace("-", "_") + sep + value

    return [fix(token) for token in argv]


def run_function(function: Any, argv: list[str], prog: str) -> int:
    """Parse ``argv`` into ``function``'s parameters (``--config FILE`` included) with jsonargparse and call
    it."""
    from jsonargparse import CLI

    CLI(function, args=underscore_flags(argv), as_positional=False, prog=prog)
    return 0


def add_publishing_arguments(parser: Any, what: str) -> None:
    """``--push_to``, ``--push_version`` and ``--hub_endpoint``: the same publishing flags on every Lightning
    stage."""
    parser.add_argument(
        "--push_to", type=str | None, default=None, help=f"Hub model repo to publish the {what} to"
    )
    parser.add_argument(
        "--push_version", type=str | None, default=None, help="version tag (default: the next free)"
    )
    parser.add_argument(
        "--hub_endpoint", type=str | None, default=None, help="Hub URL (default: kalm's resolution)"
    )
