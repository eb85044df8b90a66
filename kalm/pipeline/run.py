"""``kalm run``: the whole KALM pipeline in one resumable command.

1. the configured Hub endpoint, or the local server started in the background;
2. real rollouts collected and published (or a named dataset revision pulled);
3. the LLM grounded and published (or a named grounded model pulled);
4. imaginary rollouts for the novel levels, published as a new dataset version;
5. the baseline (real only) and KALM (real + imaginary) policies, same algorithm, steps and seed;
6. both evaluated on every level, and the report written.

The run folder ``<out>/<name>`` holds the resolved config, provenance, logs, stage records
(``stages.json``: a finished stage with the same inputs is skipped on re-runs) and the report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kalm import LOGGERS
from kalm.pipeline.config import RunConfig, TrainerConfig

if TYPE_CHECKING:
    from kalm.distributed import Ranks

log = logging.getLogger(__name__)


_THIRD_PARTY_NOISE = (  # warnings about the libraries' own internals, nothing a user of kalm can act on
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    r"predict returned None",
    r"`is_gradient_checkpointing` is deprecated",
    # OfflineRLModule optimises manually; its periodic checkpoints hold the state after each update, which is
    # what resuming needs (Lightning prints a 20-line example of saving the state before it)
    r"Using ModelCheckpoint with manual optimization",
)


def run_pipeline(config: RunConfig) -> Path:
    """Run (or continue) every stage; returns the run folder.

    With several processes (``trainer.devices``/``num_nodes`` > 1, or a ``torchrun``/``srun`` launch) every
    rank runs this; rank 0 alone picks the hub, collects, publishes, records the stages and writes the report
    (``kalm.distributed``), and its log is ``run.log`` (rank ``r``'s: ``run.rank<r>.log``).
    """
    from kalm import distributed

    config = dataclasses.replace(config, trainer=launched_placement(config.trainer))
    ranks = distributed.start(
        accelerator=config.trainer.accelerator,
        devices=config.trainer.devices,
        num_nodes=config.trainer.num_nodes,
    )
    folder = Path(config.out) / config.name
    folder.mkdir(parents=True, exist_ok=True)
    log_file = folder / ("run.log" if ranks.is_zero else f"run.rank{ranks.rank}.log")
    with _logging_to(log_file), warnings.catch_warnings():
        for message in _THIRD_PARTY_NOISE:
            warnings.filterwarnings("ignore", message=message)
        _run(config, folder, ranks)
    distributed.finish()
    return folder


def launched_placement(trainer: TrainerConfig) -> TrainerConfig:
    """The Trainer placement for this launch: under ``torchrun``/``srun`` (``WORLD_SIZE`` set) a one-device
    config takes the launcher's processes (``LOCAL_WORLD_SIZE`` per node); several processes mean ``ddp``
    unless a strategy is named."""
    import os

    from kalm.distributed import launched_world_size

    world = launched_world_size()
    if world > 1 and trainer.devices * trainer.num_nodes == 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        trainer = dataclasses.replace(trainer, devices=local, num_nodes=world // local)
    if trainer.devices * trainer.num_nodes > 1 and trainer.strategy == "auto":
        trainer = dataclasses.replace(trainer, strategy="ddp")
    return trainer


def _run(config: RunConfig, folder: Path, ranks: Ranks) -> None:
    from kalm.distributed import on_rank_zero
    from kalm.envs import get_suite
    from kalm.hub.endpoint import ensure_endpoint
    from kalm.pipeline.policies import evaluate_policies, train_policies
    from kalm.pipeline.report import gifs, success_table, write_report
    from kalm.pipeline.stages import grounding, imagination, real_data
    from kalm.pipeline.state import RunState

    suite = get_suite(config.env)

    def hub() -> dict[str, Any]:  # rank 0 picks (or starts) the hub; the other ranks use the same one
        endpoint = ensure_endpoint(config.hub_endpoint)
        _write_resolved(folder, config, endpoint.url)
        return {"url": endpoint.url, "token": endpoint.token}

    endpoint = on_rank_zero("hub endpoint", hub)
    if not ranks.is_zero:
        ensure_endpoint(endpoint["url"], token=endpoint["token"])
    state = RunState(folder)
    real = real_data(config, suite, state)
    model = grounding(config, suite, state, real, folder)
    imaginary = imagination(config, suite, state, model, folder)
    policies = train_policies(config, suite, state, real, imaginary, folder)
    evaluation = evaluate_policies(config, suite, state, policies, folder, model)

    def report() -> str:
        figures = gifs(suite, imaginary, folder, config.evaluate.gifs)
        path = write_report(
            folder,
            name=config.name,
            suite=suite,
            state=state,
            real=real,
            model=model,
            imaginary=imaginary,
            evaluation=evaluation,
            figures=figures,
            policies=policies,
        )
        print(f"\nKALM run {config.name!r} on {suite.name}: success rate per level\n")
        print(success_table(evaluation))
        print(f"\nreport: {path}")
        return str(path)

    on_rank_zero("report", report)


def _write_resolved(folder: Path, config: RunConfig, endpoint: str) -> None:
    from omegaconf import OmegaConf

    from kalm.hub.provenance import write_run_provenance

    (folder / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.structured(config)))
    write_run_provenance(folder, hub_endpoint=endpoint, config=dataclasses.asdict(config))


class _NoBanners(logging.Filter):
    """Drops the banners every Lightning ``Trainer`` prints (accelerators available, tips) from the
    console."""

    BANNERS = ("GPU available", "TPU available", "HPU available", "\N{ELECTRIC LIGHT BULB} Tip")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.BANNERS)


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """Copy kalm's (``LOGGERS``) and Lightning's log records into the run's log file while the run lasts.

    The console is spared Lightning's per-Trainer banners (a run builds a Trainer per stage); the log keeps
    them.
    """
    import lightning.pytorch  # noqa: F401  (its console handler exists once it is imported)

    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in (*LOGGERS, "lightning.pytorch")]
    for logger in loggers:
        logger.addHandler(handler)
    consoles = [h for h in loggers[-1].handlers if type(h) is logging.StreamHandler]
    banners = _NoBanners()
    for console in consoles:
        console.addFilter(banners)
    try:
        yield
    finally:
        for console in consoles:
            console.removeFilter(banners)
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()
