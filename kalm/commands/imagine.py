"""``kalm imagine``: imaginary rollouts for novel goals from a grounded LM, labelled, filtered and
published."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from kalm.commands import print_summary, underscore_flags
from kalm.errors import ConfigError
from kalm.imagine.settings import ImagineSettings

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser

    from kalm.envs.base import EnvSuite
    from kalm.grounding.model import GroundedLM


@dataclass
class TrainerOptions:
    """Where generation runs: Lightning ``Trainer`` placement options (scale out with devices/nodes)."""

    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    num_nodes: int = 1


def imagine(
    model: str,
    settings: ImagineSettings,
    env: str = "clevr",
    org: str = "kalm",
    seed: int = 0,
    work_dir: Path = Path("runs/imagine"),
    publish: bool = True,
    trainer: TrainerOptions = TrainerOptions(),  # noqa: B008 (jsonargparse reads the default's fields)
    progress: bool = True,
) -> None:
    """Imagine rollouts for novel goals with a grounded LM, label and filter them, publish them.

    Args:
        model: grounded model: Hub repo ``REPO[@REV]`` or a local folder.
        settings: what to decode (``ImagineSettings``; its fields are ``kalm imagine``'s top-level options, as
            in ``kalm run``'s ``imagine`` section: ``--levels``, ``--per_goal``, ``--greedy``,
            ``--temperature``, ...).
        env: registered environment name.
        org: namespace of the published dataset repo ``<org>/kalm-<env>-imaginary-<model name>``.
        seed: seed of initial states and sampling.
        work_dir: folder of resumable runs (one subfolder per model commit and settings).
        publish: publish the result as a new dataset version.
        trainer: Trainer placement (``--trainer.devices N`` shards batches across ranks).
        progress: show a progress bar.
    """
    from kalm.data import summarize
    from kalm.envs import get_suite
    from kalm.grounding.hub import load_grounded
    from kalm.imagine.stage import imaginary_repo_id, run_dir
    from kalm.imagine.stage import imagine as run_imagination

    suite = get_suite(env)
    loaded = load_grounded(model)
    check_model_fits(loaded.model, suite)
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
    print_summary(
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
            f"published {published.repo_id} {published.version} ({published.commit[:12]}) "
            f"on {published.endpoint}"
        )


def check_model_fits(model: GroundedLM, suite: EnvSuite) -> None:
    """Raise ``ConfigError`` when the grounded model reads other rollout shapes than the environment's."""
    config, spec = model.config, suite.spec
    if (config.obs_dim, config.action_dim, config.discrete) != (spec.obs_dim, spec.action_dim, spec.discrete):
        raise ConfigError(
            f"the grounded model reads obs_dim={config.obs_dim}, action_dim={config.action_dim}, "
            f"discrete={config.discrete}; environment {suite.name!r} has {spec}"
        )


def parser() -> ArgumentParser:
    """``kalm imagine``'s parser: :func:`imagine`'s arguments with ``settings``' fields at the top level."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    parser = ArgumentParser(
        prog="kalm imagine", parser_mode="omegaconf", description=(imagine.__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_function_arguments(imagine, skip={"settings"})
    parser.add_class_arguments(ImagineSettings)  # the same options and defaults as kalm run's imagine section
    return parser


def main(argv: list[str]) -> int:
    """Run ``kalm imagine --model REPO[@REV] [--config FILE] [options]``."""
    values = parser().parse_args(underscore_flags(argv)).as_dict()
    values.pop("config", None)
    settings = ImagineSettings(**{field.name: values.pop(field.name) for field in fields(ImagineSettings)})
    imagine(settings=settings, **values | {"trainer": TrainerOptions(**values["trainer"])})
    return 0
