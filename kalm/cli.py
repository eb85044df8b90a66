"""The ``kalm`` command line: one entry point, a subcommand per pipeline stage.

``kalm collect | envs | run`` are functions parsed by jsonargparse (each accepts ``--config FILE``);
``kalm ground fit|validate ...`` is a LightningCLI tree; ``kalm hub ...`` is the hub's own command tree. A user error (``KalmError``) prints one line and exits 2.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from jsonargparse import CLI

from kalm.errors import KalmError

log = logging.getLogger("kalm")


def collect(
    env: str = "clevr",
    episodes: int = 1000,
    out: Path = Path("outputs/clevr-real"),
    seed: int = 0,
    noise: float = 0.1,
    random_fraction: float = 0.1,
    progress: bool = True,
) -> None:
    """Collect real rollouts of training goals with the environment's behaviour policy.

    Args:
        env: registered environment name (see ``kalm envs``).
        episodes: number of rollout-goal pairs to collect.
        out: folder to write the dataset to (parquet shards + meta/info.json); replaced if it exists.
        seed: base seed; episode i is reproducible from (seed, i).
        noise: probability that the behaviour policy takes a random action at a step.
        random_fraction: fraction of episodes that act uniformly at random (exploration data).
        progress: show a progress bar.
    """
    from kalm.collect import collect_rollouts
    from kalm.data import write_rollouts
    from kalm.envs import get_suite

    suite = get_suite(env)
    result = collect_rollouts(
        suite, episodes=episodes, seed=seed, noise=noise, random_fraction=random_fraction, progress=progress
    )
    provenance = {"generator": "behaviour_policy", "seed": seed, "noise": noise,
                  "random_fraction": random_fraction}
    folder = write_rollouts(result.dataset, out, env=suite.name, spec=suite.spec, provenance=provenance)
    _print_summary(f"{suite.name} real rollouts -> {folder}", result.summary, result.seconds)


def envs() -> None:
    """List the registered environments with their goal counts per level."""
    from kalm.envs import LEVELS, SUITES, get_suite

    for name in sorted(SUITES):
        suite = get_suite(name)
        counts = ", ".join(
            f"{level} {len(suite.goals(level))} goals / {sum(len(g.sentences) for g in suite.goals(level))} sentences"
            for level in LEVELS
        )
        print(f"{name:10s} {suite.gym_id:24s} {counts}")


def run(
    env: str = "clevr",
    episodes: int = 2000,
    out: Path = Path("runs/default"),
    seed: int = 0,
) -> None:
    """The main job: the KALM pipeline on embedded defaults.

    Currently it runs the pipeline's first stage, collecting real rollouts, and prints their summary.

    Args:
        env: registered environment name.
        episodes: real rollout-goal pairs to collect.
        out: run folder.
        seed: base seed.
    """
    collect(env=env, episodes=episodes, out=Path(out) / "real", seed=seed)


def _print_summary(title: str, summary: dict, seconds: float) -> None:
    print(title)
    print(f"  episodes      {summary['episodes']}")
    print(f"  transitions   {summary['transitions']}")
    print(f"  success rate  {summary['success_rate']:.3f}")
    print(f"  mean length   {summary['mean_length']:.2f}")
    print(f"  levels        {json.dumps(summary['levels'])}")
    print(f"  time          {seconds:.1f} s ({summary['episodes'] / max(seconds, 1e-9):.0f} episodes/s)")


def _configure_logging() -> None:
    logger = logging.getLogger("kalm")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


COMMANDS = {"collect": collect, "envs": envs, "run": run}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kalm`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    _configure_logging()
    try:
        if argv and argv[0] == "hub":
            from kalm.hub.cli import main as hub_main

            return hub_main(argv[1:])
        if argv and argv[0] == "ground":
            from kalm.grounding.cli import main as ground_main

            sys.argv = [f"{sys.argv[0]} ground", *argv[1:]]  # LightningCLI reads its program name here
            ground_main(argv[1:])
            return 0
        CLI(COMMANDS, args=argv, as_positional=False)
    except KalmError as error:
        print(f"kalm: error: {error}", file=sys.stderr)
        return 2
    return 0
