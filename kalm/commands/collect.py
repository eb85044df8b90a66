"""``kalm collect``: real rollouts of the training goals with the environment's behaviour policy."""

from __future__ import annotations

from pathlib import Path

from kalm.commands import print_summary, run_function


def collect(
    env: str = "clevr",
    episodes: int = 2000,
    out: Path | None = None,
    seed: int = 0,
    noise: float = 0.1,
    random_fraction: float = 0.1,
    hindsight: int = 0,
    progress: bool = True,
) -> None:
    """Collect real rollouts of training goals with the environment's behaviour policy.

    Args:
        env: registered environment name (see ``kalm envs``).
        episodes: number of rollout-goal pairs to collect.
        out: folder to write the dataset to (parquet shards + meta/info.json; default runs/<env>-real);
            replaced if it exists.
        seed: base seed; episode i is reproducible from (seed, i).
        noise: behaviour-policy noise, environment-specific: CLEVR-Robot, the probability of a random action
            at a step; Meta-World, the standard deviation of Gaussian action noise.
        random_fraction: fraction of episodes that act uniformly at random (exploration data).
        hindsight: per episode, up to this many copies relabelled with other training goals it achieves (cut
            at their first success); 0: none. CLEVR-Robot only (relations of the ball the episode moved).
        progress: show a progress bar.
    """
    from kalm.collect import collect_rollouts
    from kalm.data import write_rollouts
    from kalm.envs import get_suite

    suite = get_suite(env)
    result = collect_rollouts(
        suite,
        episodes=episodes,
        seed=seed,
        noise=noise,
        random_fraction=random_fraction,
        hindsight=hindsight,
        progress=progress,
    )
    provenance = {
        "generator": "behaviour_policy",
        "seed": seed,
        "noise": noise,
        "random_fraction": random_fraction,
        "hindsight": hindsight,
        "hindsight_copies": result.summary.get("hindsight_copies", 0),
    }
    out = out or Path("runs") / f"{suite.name}-real"
    folder = write_rollouts(result.dataset, out, env=suite.name, spec=suite.spec, provenance=provenance)
    print_summary(f"{suite.name} real rollouts -> {folder}", result.summary, result.seconds)


def main(argv: list[str]) -> int:
    """Run ``kalm collect [--config FILE] [options]``."""
    return run_function(collect, argv, "kalm collect")
