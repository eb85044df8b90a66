"""The imagination stage: plan, decode (sharded through ``Trainer.predict``), label, filter, merge."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import datasets
import lightning as L
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from kalm.envs.base import EnvSuite
from kalm.errors import KalmError
from kalm.imagine.label import FilterStats
from kalm.imagine.plan import batches, plan_items
from kalm.imagine.run import ImagineModule, batch_path, merge, pending_batches
from kalm.imagine.settings import ImagineSettings

log = logging.getLogger(__name__)


@dataclass
class ImagineResult:
    """The merged dataset, verdict counts, wall time and the folder holding the batch files."""

    dataset: datasets.Dataset
    stats: FilterStats
    seconds: float
    work_dir: Path


def run_dir(root: Path, model_commit: str, settings: ImagineSettings, seed: int = 0) -> Path:
    """The work folder of a run: the same model commit, settings and seed always resume the same folder."""
    key = json.dumps({"model": model_commit, "seed": seed, **asdict(settings)}, sort_keys=True)
    return Path(root) / hashlib.sha256(key.encode()).hexdigest()[:12]


def imagine(
    model: Any,
    suite: EnvSuite,
    settings: ImagineSettings,
    *,
    work_dir: Path,
    seed: int = 0,
    trainer: dict[str, Any] | None = None,
    progress: bool = True,
) -> ImagineResult | None:
    """Run (or resume) the plan in ``work_dir``; returns the merged result on rank 0, ``None`` elsewhere.

    ``seed`` fixes the initial states and the sampling.
    """
    start = time.perf_counter()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "settings.json").write_text(json.dumps({"seed": seed, **asdict(settings)}, indent=2) + "\n")
    plan = batches(
        plan_items(suite, settings.levels, per_goal=settings.per_goal, seed=seed), settings.batch_size
    )
    todo = pending_batches(work_dir, len(plan))
    total = sum(len(batch) for batch in plan)
    log.info("imagining %d rollouts in %d batches (%d to do) in %s", total, len(plan), len(todo), work_dir)
    if todo:
        bar = tqdm(
            total=total,
            initial=total - sum(len(plan[i]) for i in todo),
            unit="rollout",
            desc=f"imagine {suite.name}",
            disable=not progress or None,
        )
        runner = ImagineModule(
            model,
            suite,
            plan,
            work_dir,
            horizon=settings.horizon,
            greedy=settings.greedy,
            temperature=settings.temperature,
            seed=seed,
            keep_implausible=settings.keep_implausible,
            project_states=settings.project_states,
            progress=bar,
        )
        options = {"accelerator": "cpu", "devices": 1, **(trainer or {})}
        runner_trainer = L.Trainer(
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            **options,
        )
        # a list is a map-style dataset (``__getitem__`` and ``__len__``); torch annotates ``Dataset`` only
        loader: DataLoader[int] = DataLoader(todo, batch_size=1)  # type: ignore[arg-type]
        runner_trainer.predict(runner, dataloaders=loader, return_predictions=False)
        bar.close()
        runner_trainer.strategy.barrier("imagine: every rank wrote its batches")
        if not runner_trainer.is_global_zero:
            return None
        missing = pending_batches(work_dir, len(plan))
        if missing:
            raise KalmError(
                f"{len(missing)} of {len(plan)} imagination batches "
                f"(e.g. {batch_path(work_dir, missing[0])}) "
                "were decoded by other ranks but are not here: with several nodes the run folder must "
                "be on a filesystem every node shares"
            )
    dataset, stats = merge(work_dir, len(plan), keep_implausible=settings.keep_implausible)
    if len(dataset) == 0:
        raise KalmError(
            f"imagination kept none of its {total} rollouts (verdicts {stats.to_dict()}): the grounded "
            "model's states are not yet physically plausible; ground it longer, "
            "or keep them (keep_implausible)"
        )
    return ImagineResult(dataset, stats, time.perf_counter() - start, work_dir)


def imaginary_repo_id(org: str, env: str, model_repo: str) -> str:
    """``<org>/kalm-<env>-imaginary-<model name>`` (the model name is the repo's last part)."""
    name = Path(model_repo.rstrip("/")).name.removeprefix(f"kalm-{env}-grounded-")
    return f"{org}/kalm-{env}-imaginary-{name}"
