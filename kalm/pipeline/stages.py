"""The data and LLM stages of a run: real data, grounding, imagination. Each publishes to the hub.

Every stage returns a small JSON-able record of what it produced (repo id, version, commit sha and
figures for the report) and is skipped when ``RunState`` already holds a record for the same key.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kalm.distributed import on_every_rank, on_rank_zero
from kalm.envs.base import EnvSuite
from kalm.errors import ConfigError, KalmError
from kalm.hub.endpoint import active_endpoint, hub_api
from kalm.hub.naming import split_revision
from kalm.pipeline.config import RunConfig
from kalm.pipeline.state import RunState, stage_key

log = logging.getLogger(__name__)


def cached(
    state: RunState,
    stage: str,
    key: str,
    produce: Callable[[], dict[str, Any] | None],
    *,
    every_rank: bool = False,
    repo_type: str | None = None,
) -> dict[str, Any]:
    """Return the recorded output of ``stage`` for ``key``, or run ``produce`` and record it.

    Rank 0 decides (from its ``stages.json``) and records; every rank returns rank 0's record. ``produce``
    runs on rank 0 alone while the other ranks wait, or, with ``every_rank`` (a Lightning stage: every rank
    joins the Trainer), on every rank, and rank 0's output is the stage's (``kalm.distributed``).

    A stage that publishes (``repo_type``: ``"dataset"`` or ``"model"``) counts as done only while the hub
    still holds the recorded commit: a run folder resumed against another hub (a fresh local store, another
    endpoint) produces the artefact again instead of failing on it downstream.
    """

    def look_up() -> dict[str, Any] | None:
        previous = state.done(stage, key)
        if previous is None or repo_type is None or _on_hub(previous, repo_type):
            return previous
        log.warning(
            "%s: recorded %s@%s is not on this hub (%s); running the stage again",
            stage,
            previous["repo_id"],
            previous["commit"][:12],
            active_endpoint().url,
        )
        return None

    previous = on_rank_zero(f"{stage} look-up", look_up)
    if previous is not None:
        log.info("%s: done before (%s), skipped", stage, key)
        return previous
    log.info("%s: running", stage)
    start = time.perf_counter()
    output = on_every_rank(stage, produce) if every_rank else None

    def record() -> dict[str, Any]:
        result = output if every_rank else produce()
        assert result is not None, f"{stage} produced nothing on rank 0"
        state.record(stage, key, result, time.perf_counter() - start)
        return result

    return on_rank_zero(f"{stage} record" if every_rank else stage, record)


def _on_hub(output: dict[str, Any], repo_type: str) -> bool:
    """Whether the active hub holds the ``repo_id`` at the ``commit`` a stage recorded (a folder pulled as
    ``commit: local``: whether it still exists)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    from kalm.hub.versions import commit_sha

    if output["commit"] == "local":
        return Path(output["repo_id"]).exists()
    try:
        commit_sha(hub_api(), output["repo_id"], output["commit"], repo_type)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        return False
    return True


def real_data(config: RunConfig, suite: EnvSuite, state: RunState) -> dict[str, Any]:
    """Collect and publish real rollouts, or pull the named dataset revision."""
    from kalm.data import summarize
    from kalm.hub.datasets import publish_dataset, pull_dataset

    settings = config.collect
    if settings.pull:
        repo, revision = split_revision(settings.pull)

        def pull() -> dict[str, Any]:
            pulled = pull_dataset(repo, revision)
            return {
                "repo_id": repo,
                "version": pulled.revision,
                "commit": pulled.commit,
                "summary": pulled.info.get("totals", {}),
            }

        return cached(state, "real_data", stage_key("pull", settings.pull), pull, repo_type="dataset")

    def collect() -> dict[str, Any]:
        from kalm.collect import collect_rollouts

        result = collect_rollouts(
            suite,
            episodes=settings.episodes,
            seed=config.seed,
            noise=settings.noise,
            random_fraction=settings.random_fraction,
            hindsight=settings.hindsight,
        )
        published = publish_dataset(
            result.dataset,
            f"{config.org}/kalm-{suite.name}-real",
            env=suite.name,
            spec=suite.spec,
            provenance={
                "collector": "scripted behaviour policy",
                "seed": config.seed,
                "hindsight_copies": result.summary.get("hindsight_copies", 0),
                "config": dataclasses.asdict(settings),
            },
        )
        return {
            "repo_id": published.repo_id,
            "version": published.version,
            "commit": published.commit,
            "summary": summarize(result.dataset),
        }

    return cached(
        state,
        "real_data",
        stage_key("collect", suite.name, config.seed, _settings_key(settings)),
        collect,
        repo_type="dataset",
    )


def _settings_key(settings: Any) -> dict[str, Any]:
    """A stage's settings for its key, without settings added later that are at their off value, so run
    folders made before a setting existed still resume."""
    return {
        name: value
        for name, value in dataclasses.asdict(settings).items()
        if not (name in _ADDED_LATER and value == _ADDED_LATER[name])
    }


_ADDED_LATER = {"hindsight": 0}


def grounding(
    config: RunConfig, suite: EnvSuite, state: RunState, real: dict[str, Any], folder: Path
) -> dict[str, Any]:
    """Ground the LLM on the real data and publish it, or pull the named grounded model."""
    settings = config.ground
    init_from = settings.model["init_from"]
    if settings.pull and init_from:
        raise ConfigError(
            "ground.pull (use a grounded model as it is) and ground.model.init_from (ground further "
            "from one) exclude each other; set one of them"
        )
    if settings.pull:
        reference = settings.pull

        def pull() -> dict[str, Any]:
            from kalm.grounding.hub import load_grounded

            loaded = load_grounded(reference)
            return {
                "repo_id": loaded.source,
                "version": split_revision(reference)[1],
                "commit": loaded.commit,
                "metrics": loaded.provenance.get("metrics", {}),
            }

        return cached(state, "grounding", stage_key("pull", reference), pull, repo_type="model")
    parts: list[Any] = ["ground", suite.name, config.seed, dataclasses.asdict(settings), real["commit"]]
    if init_from:  # the parent's commit: a new version of it grounds again
        from kalm.grounding.hub import resolve_grounded

        parts.append(resolve_grounded(init_from))
    key = stage_key(*parts)
    return cached(
        state,
        "grounding",
        key,
        lambda: _fit_grounding(config, suite, real, folder / "ground" / key),
        every_rank=True,
        repo_type="model",
    )


def _fit_grounding(
    config: RunConfig, suite: EnvSuite, real: dict[str, Any], folder: Path
) -> dict[str, Any] | None:
    """Fit on every rank (each on its share of the batches); rank 0 publishes the full model.

    With ``ground.stall_check`` a fit whose action head is still at chance at a validation
    (``kalm.grounding.health``) is abandoned and grounded again from scratch under a seed derived from the
    run's, up to ``ground.restarts`` times; each abandoned attempt leaves ``stalled.json`` in its folder (a
    resumed run skips it) and is listed in the stage record. Attempt 0 lives in ``folder``, attempt k in
    ``folder/restart-k``.
    """
    import json

    from datamodules.mixing import seed_from
    from kalm.grounding.health import CHANCE_MARGIN, GroundingStalled

    settings = config.ground
    stalled: list[dict[str, Any]] = []
    for attempt in range(settings.restarts + 1):
        seed = config.seed if attempt == 0 else seed_from(config.seed, attempt) % 2**32
        where = folder if attempt == 0 else folder / f"restart-{attempt}"
        marker = where / "stalled.json"
        if marker.exists():  # abandoned by an earlier run of this stage
            stalled.append(json.loads(marker.read_text()))
            continue
        try:
            return _fit_grounding_once(config, suite, real, where, seed, stalled)
        except GroundingStalled as error:
            record = {"seed": seed, "step": error.step, "action_loss": round(error.loss, 4)}
            record["chance"] = round(error.chance, 4)
            stalled.append(record)
            on_rank_zero(f"grounding stalled {attempt}", lambda: marker.write_text(json.dumps(record)))
            left = settings.restarts - attempt
            log.warning("%s; %s", error, f"grounding again ({left} restart(s) left)" if left else "giving up")
    losses = ", ".join(f"{record['action_loss']:.3f} (seed {record['seed']})" for record in stalled)
    chance = stalled[-1]["chance"]
    raise KalmError(
        f"grounding stalled in all {len(stalled)} attempt(s): validation action loss {losses}, chance "
        f"{chance:.3f}; expected one below {(1 - CHANCE_MARGIN) * chance:.3f} (raise ground.restarts, or set "
        "ground.stall_check false to keep a model at chance)"
    )


def _fit_grounding_once(
    config: RunConfig,
    suite: EnvSuite,
    real: dict[str, Any],
    folder: Path,
    seed: int,
    stalled: list[dict[str, Any]],
) -> dict[str, Any] | None:
    """One grounding attempt under ``seed`` in ``folder`` (resumed from its last checkpoint)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from datamodules.rollout_goal import RolloutGoalDataModule
    from kalm.grounding.health import ActionChanceGuard
    from kalm.grounding.hub import push_grounded
    from kalm.grounding.module import GroundingModule

    settings = config.ground
    L.seed_everything(seed, verbose=False)
    module = GroundingModule(**settings.model, env=suite.name)
    data = RolloutGoalDataModule(
        **settings.data,
        dataset=real["repo_id"],
        revision=real["commit"],
        env=suite.name,
        backbone=settings.model["backbone"],
        object_tokens=bool(module.model.codec.objects),  # as the model reads states (init_from: its parent)
        seed=seed,
    )
    every = settings.trainer["val_check_interval"]
    checkpoints = ModelCheckpoint(
        dirpath=folder / "checkpoints",
        save_last=True,
        every_n_train_steps=max(1, every if isinstance(every, int) else settings.trainer["max_steps"]),
    )
    trainer = L.Trainer(
        **dataclasses.asdict(config.trainer),
        **settings.trainer,
        callbacks=[checkpoints, *([ActionChanceGuard()] if settings.stall_check else [])],
        logger=CSVLogger(folder, name="logs"),
        default_root_dir=folder,
    )
    last = folder / "checkpoints" / "last.ckpt"
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.exists() else None)
    model = module.full_model()  # a collective under a sharding strategy (FSDP, DeepSpeed)
    if not trainer.is_global_zero:
        return None
    metrics = {
        key: round(float(value), 4)
        for key, value in trainer.callback_metrics.items()
        if key.startswith("val/")
    }
    published = push_grounded(
        model,
        f"{config.org}/kalm-{suite.name}-grounded-{grounded_name(settings.model)}",
        env=suite.name,
        provenance={
            "source_datasets": [{"repo_id": real["repo_id"], "revision": real["commit"]}],
            "metrics": metrics,
            "steps": trainer.global_step,
            **({"seed": seed, "stalled": stalled} if stalled else {}),
        },
    )
    lineage = module.model.config.lineage
    return {
        "repo_id": published.repo_id,
        "version": published.version,
        "commit": published.commit,
        "metrics": metrics,
        "steps": trainer.global_step,
        "seed": seed,
        "stalled": stalled,
        **({"parent": lineage[0]} if lineage else {}),
    }


def imagination(
    config: RunConfig, suite: EnvSuite, state: RunState, model: dict[str, Any], folder: Path
) -> dict[str, Any]:
    """Imagine rollouts for the novel levels with the grounded model and publish them."""
    settings = config.imagine
    key = stage_key("imagine", suite.name, config.seed, dataclasses.asdict(settings), model["commit"])

    def produce() -> dict[str, Any] | None:
        from kalm.data import summarize
        from kalm.grounding.hub import load_grounded
        from kalm.hub.datasets import publish_dataset
        from kalm.imagine.replay import replay_agreement
        from kalm.imagine.stage import imaginary_repo_id, imagine, run_dir

        loaded = load_grounded(model["repo_id"], model["commit"])
        placement = {k: v for k, v in dataclasses.asdict(config.trainer).items() if k != "precision"}
        work_dir = run_dir(folder / "imagine", model["commit"], settings, config.seed)
        result = imagine(
            loaded.model.eval(), suite, settings, work_dir=work_dir, seed=config.seed, trainer=placement
        )
        if result is None:  # ranks other than 0 decoded their share; rank 0 merges and publishes
            return None
        published = publish_dataset(
            result.dataset,
            imaginary_repo_id(config.org, suite.name, model["repo_id"]),
            env=suite.name,
            spec=suite.spec,
            provenance={
                "generator_model": {"repo_id": model["repo_id"], "revision": model["commit"]},
                "source_datasets": loaded.provenance.get("source_datasets", []),
                "seed": config.seed,
                "config": {"decoding": dataclasses.asdict(settings)},
                "filter_stats": result.stats.to_dict(),
            },
        )
        return {
            "repo_id": published.repo_id,
            "version": published.version,
            "commit": published.commit,
            "summary": summarize(result.dataset),
            "filter_stats": result.stats.to_dict(),
            "filter_table": result.stats.table(),
            "work_dir": str(result.work_dir),
            "replay": replay_agreement(suite, result.dataset.with_format("numpy")),
        }

    return cached(state, "imagination", key, produce, every_rank=True, repo_type="dataset")


def grounded_name(model: dict[str, Any]) -> str:
    """The grounded model's name from ``GroundingModule``'s arguments: ``smollm2-135m-8l``, and
    ``-from-<parent env>`` when it grounds further from a parent (``init_from``)."""
    name = Path(model["backbone"].rstrip("/")).name.lower()
    name = f"{name}-{model['num_layers']}l" if model["num_layers"] else name
    return f"{name}-from-{parent_name(model['init_from'])}" if model["init_from"] else name


def parent_name(reference: str) -> str:
    """A short name of a parent grounded model for the child's repo name: the environment of
    ``kalm-<env>-grounded-...`` repos (``kalm-clevr-grounded-smollm2-135m-8l`` -> ``clevr``), else its last
    part."""
    name = Path(split_revision(reference)[0].rstrip("/")).name.lower()
    match = re.fullmatch(r"kalm-(.+?)-grounded-.+", name)
    return match.group(1) if match else name
