"""``kalm imagine``: imaginary rollouts for novel goals from a grounded LM, labelled, filtered and published."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kalm.commands import print_summary, run_function
from kalm.errors import ConfigError

if TYPE_CHECKING:
    from kalm.envs.base import EnvSuite
    from kalm.grounding.model import GroundedLM


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
    levels: list[str] | None = None,
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
    trainer: TrainerOptions = TrainerOptions(),  # noqa: B008 (jsonargparse reads the default's fields)
    progress: bool = True,
) -> None:
    """Imagine rollouts for novel goals with a grounded LM, label and filter them, publish them.

    Args:
        model: grounded model: Hub repo ``REPO[@REV]`` or a local folder.
        env: registered environment name.
        levels: goal levels to imagine for (default: the novel ones, ``[rephrase, easy, hard]``).
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
    from kalm.envs import NOVEL_LEVELS, get_suite
    from kalm.grounding.hub import load_grounded
    from kalm.imagine.settings import ImagineSettings
    from kalm.imagine.stage import imaginary_repo_id, run_dir
    from kalm.imagine.stage import imagine as run_imagination

    suite = get_suite(env)
    loaded = load_grounded(model)
    check_model_fits(loaded.model, suite)
    settings = ImagineSettings(
        levels=list(levels or NOVEL_LEVELS),
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
            f"published {published.repo_id} {published.version} ({published.commit[:12]}) on {published.endpoint}"
        )


def check_model_fits(model: GroundedLM, suite: EnvSuite) -> None:
    """Raise ``ConfigError`` when the grounded model reads other rollout shapes than the environment's."""
    config, spec = model.config, suite.spec
    if (config.obs_dim, config.action_dim, config.discrete) != (spec.obs_dim, spec.action_dim, spec.discrete):
        raise ConfigError(
            f"the grounded model reads obs_dim={config.obs_dim}, action_dim={config.action_dim}, "
            f"discrete={config.discrete}; environment {suite.name!r} has {spec}"
        )


def main(argv: list[str]) -> int:
    """Run ``kalm imagine --model REPO[@REV] [--config FILE] [options]``."""
    return run_function(imagine, argv, "kalm imagine")
