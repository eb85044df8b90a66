"""The ``kalm`` command line: one entry point, a subcommand per pipeline stage.

``kalm collect | envs | imagine`` are functions parsed by jsonargparse (each accepts ``--config FILE``);
``kalm run`` is the whole pipeline (``kalm.pipeline``);
``kalm ground ...`` and ``kalm learn ...`` are LightningCLI trees; ``kalm hub ...`` is the hub's own command tree. A user error (``KalmError``) prints one line and exits 2.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

from jsonargparse import CLI

from kalm.errors import KalmError

log = logging.getLogger("kalm")


def collect(
    env: str = "clevr",
    episodes: int = 1000,
    out: Path | None = None,
    seed: int = 0,
    noise: float = 0.1,
    random_fraction: float = 0.1,
    progress: bool = True,
) -> None:
    """Collect real rollouts of training goals with the environment's behaviour policy.

    Args:
        env: registered environment name (see ``kalm envs``).
        episodes: number of rollout-goal pairs to collect.
        out: folder to write the dataset to (parquet shards + meta/info.json; default outputs/<env>-real);
            replaced if it exists.
        seed: base seed; episode i is reproducible from (seed, i).
        noise: behaviour-policy noise, environment-specific: CLEVR-Robot, the probability of a random action
            at a step; Meta-World, the standard deviation of Gaussian action noise.
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
    provenance = {
        "generator": "behaviour_policy",
        "seed": seed,
        "noise": noise,
        "random_fraction": random_fraction,
    }
    out = out or Path("outputs") / f"{suite.name}-real"
    folder = write_rollouts(result.dataset, out, env=suite.name, spec=suite.spec, provenance=provenance)
    _print_summary(f"{suite.name} real rollouts -> {folder}", result.summary, result.seconds)


def envs() -> None:
    """List the registered environments (entry-point group ``kalm.envs``): source package, gym id, goal counts."""
    from kalm.envs import LEVELS, get_suite, registered_envs

    for name, entry in sorted(registered_envs().items()):
        try:
            suite = get_suite(name)
        except KalmError as error:  # one broken plugin does not hide the others
            print(f"{name:10s} {entry.source:20s} cannot be loaded: {error}")
            continue
        counts = ", ".join(
            f"{level} {len(suite.goals(level))} goals / {sum(len(g.sentences) for g in suite.goals(level))} sentences"
            for level in LEVELS
        )
        print(f"{name:10s} {entry.source:20s} {suite.gym_id:24s} {counts}")


@dataclass
class TrainerOptions:
    """Where generation runs: Lightning ``Trainer`` placement options (scale out with devices/nodes)."""

    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    num_nodes: int = 1


def imagine(
    model: str,
    env: str = "clevr",
    levels: str = "rephrase,easy,hard",
    per_goal: int | dict[str, int] = 4,
    org: str = "kalm",
    seed: int = 0,
    batch_size: int = 64,
    greedy: bool = True,
    temperature: float | dict[str, float] = 1.0,
    horizon: int | None = None,
    keep_implausible: bool = False,
    project_states: bool | None = None,
    work_dir: Path = Path("outputs/imagine"),
    publish: bool = True,
    trainer: TrainerOptions = TrainerOptions(),
    progress: bool = True,
) -> None:
    """Imagine rollouts for novel goals with a grounded LM, label and filter them, publish them.

    Args:
        model: grounded model: Hub repo ``REPO[@REV]`` or a local folder.
        env: registered environment name.
        levels: comma-separated goal levels to imagine for.
        per_goal: rollouts per goal: one number, or one per level (``--per_goal '{easy: 64, hard: 4}'``).
        org: namespace of the published dataset repo ``<org>/kalm-<env>-imaginary-<model name>``.
        seed: seed of initial states and sampling.
        batch_size: rollouts decoded together.
        greedy: argmax actions; false samples with ``temperature``.
        temperature: sampling temperature: one value, or one per level (``--temperature '{rephrase: 0.7, hard: 1.0}'``).
        horizon: maximum rollout length (default: the environment's).
        keep_implausible: keep rollouts that fail the plausibility checks.
        project_states: put decoded states back on what the environment guarantees instead of dropping the
            rollouts that leave it (default: the environment's choice; CLEVR drops, Meta-World and BabyAI repair).
        work_dir: folder of resumable runs (one subfolder per model commit and settings).
        publish: publish the result as a new dataset version.
        trainer: Trainer placement (``--trainer.devices N`` shards batches across ranks).
        progress: show a progress bar.
    """
    from kalm.data import summarize
    from kalm.envs import get_suite
    from kalm.grounding.hub import load_grounded
    from kalm.imagine.settings import ImagineSettings
    from kalm.imagine.stage import imaginary_repo_id, run_dir
    from kalm.imagine.stage import imagine as run_imagination

    suite = get_suite(env)
    loaded = load_grounded(model)
    _check_model_fits(loaded.model, suite)
    settings = ImagineSettings(
        levels=[level.strip() for level in levels.split(",")],
        per_goal=per_goal,
        batch_size=batch_size,
        greedy=greedy,
        temperature=temperature,
        horizon=horizon,
        keep_implausible=keep_implausible,
        project_states=project_states,
    )
    result = run_imagination(
        loaded.model.eval(),
        suite,
        settings,
        work_dir=run_dir(work_dir, f"{loaded.source}@{loaded.commit}", settings, seed),
        seed=seed,
        trainer=vars(trainer),
        progress=progress,
    )
    if result is None:  # not rank 0
        return
    _print_summary(
        f"{suite.name} imaginary rollouts ({result.work_dir})", summarize(result.dataset), result.seconds
    )
    print(result.stats.table())
    if publish:
        from kalm.hub.datasets import publish_dataset

        provenance = {
            "generator_model": {"repo_id": loaded.source, "revision": loaded.commit},
            "source_datasets": loaded.provenance.get("source_datasets", []),
            "seed": seed,
            "config": {"decoding": vars(settings) | {"levels": settings.levels}},
            "filter_stats": result.stats.to_dict(),
        }
        published = publish_dataset(
            result.dataset,
            imaginary_repo_id(org, env, loaded.source),
            env=suite.name,
            spec=suite.spec,
            provenance=provenance,
        )
        print(
            f"published {published.repo_id} {published.version} ({published.commit[:12]}) on {published.endpoint}"
        )


def _check_model_fits(model: object, suite: object) -> None:
    from kalm.errors import ConfigError

    config, spec = model.config, suite.spec  # type: ignore[attr-defined]
    if (config.obs_dim, config.action_dim, config.discrete) != (spec.obs_dim, spec.action_dim, spec.discrete):
        raise ConfigError(
            f"the grounded model reads obs_dim={config.obs_dim}, action_dim={config.action_dim}, "
            f"discrete={config.discrete}; environment {suite.name!r} has {spec}"
        )  # type: ignore


def _print_summary(title: str, summary: dict, seconds: float) -> None:
    print(title)
    print(f"  episodes      {summary['episodes']}")
    print(f"  transitions   {summary['transitions']}")
    print(f"  success rate  {summary['success_rate']:.3f}")
    print(f"  mean length   {summary['mean_length']:.2f}")
    print(f"  levels        {json.dumps(summary['levels'])}")
    print(f"  time          {seconds:.1f} s ({summary['episodes'] / max(seconds, 1e-9):.0f} episodes/s)")


def _underscore_flags(argv: list[str]) -> list[str]:
    """Accept ``--per-goal`` as well as ``--per_goal`` (jsonargparse names flags after the parameters)."""

    def fix(token: str) -> str:
        if not token.startswith("--"):
            return token
        name, sep, value = token.partition("=")
        return "--" + name[2:].replace("-", "_") + sep + value

    return [fix(token) for token in argv]


def _configure_logging() -> None:
    import datasets
    from huggingface_hub.utils import disable_progress_bars

    datasets.disable_progress_bars()  # kalm shows its own bars; the per-file bars of datasets and
    disable_progress_bars()  # huggingface_hub's downloads are noise here
    logger = logging.getLogger("kalm")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


COMMANDS = {"collect": collect, "envs": envs, "imagine": imagine}
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``kalm`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    _configure_logging()
    # ``kalm ground|learn`` hand LightningCLI the subcommand's arguments and leave sys.argv as launched (Lightning's
    # DDP launcher re-runs it for the other local ranks); LightningCLI warns whenever both are set
    warnings.filterwarnings(
        "ignore", message="LightningCLI's args parameter is intended to run from within Python"
    )
    try:
        if argv and argv[0] == "hub":
            from kalm.hub.cli import main as hub_main

            return hub_main(argv[1:])
        if argv and argv[0] == "run":
            from kalm.pipeline.cli import main as run_main

            return run_main(argv[1:])
        if argv and argv[0] == "evaluate":
            from kalm.rl.cli import evaluate_main

            return evaluate_main(argv[1:])
        if argv and argv[0] == "learn":
            from kalm.rl.cli import learn_main

            return learn_main(argv[1:])
        if argv and argv[0] == "ground":
            from kalm.grounding.cli import main as ground_main

            ground_main(argv[1:])
            return 0
        CLI(COMMANDS, args=_underscore_flags(argv), as_positional=False)
    except KalmError as error:
        print(f"kalm: error: {error}", file=sys.stderr)
        return 2
    return 0
