"""``kalm envs``: the registered environments (plugins) with their packages and goal counts."""

from __future__ import annotations

from kalm.commands import run_function
from kalm.errors import KalmError


def envs() -> None:
    """List the registered environments (entry-point group ``kalm.envs``): source package, gym id, \
goal counts."""
    from kalm.envs import LEVELS, get_suite, registered_envs

    for name, entry in sorted(registered_envs().items()):
        try:
            suite = get_suite(name)
        except KalmError as error:  # one broken plugin does not hide the others
            print(f"{name:10s} {entry.source:20s} cannot be loaded: {error}")
            continue
        counts = ", ".join(
            f"{level} {len(suite.goals(level))} goals / "
            f"{sum(len(g.sentences) for g in suite.goals(level))} sentences"
            for level in LEVELS
        )
        print(f"{name:10s} {entry.source:20s} {suite.gym_id:24s} {counts}")


def main(argv: list[str]) -> int:
    """Run ``kalm envs``."""
    return run_function(envs, argv, "kalm envs")
