"""Running an imagination plan: decode batches, label and check them, write one file per batch, merge.

Every finished batch is written to ``<work_dir>/batches/batch-NNNNN.parquet`` (with its verdicts in a
``.json`` beside it) through an atomic rename, so a killed run resumes with the batches that have no
file yet and never duplicates a rollout. Batches are decoded by ``ImagineModule.predict_step``, so
``Trainer.predict`` spreads them over devices and nodes (see ``plan`` for why the result is the same).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypedDict

import datasets
import lightning as L
import numpy as np
import torch
from typing_extensions import override

from kalm.data import rollouts_to_dataset
from kalm.envs.base import EnvSuite
from kalm.grounding.metrics import decoding_horizon, judge_stop, state_projection
from kalm.imagine.label import PLAUSIBLE, FilterStats, label_rollout, verdict
from kalm.imagine.plan import Item, initial_states


def batch_path(work_dir: Path, index: int) -> Path:
    return work_dir / "batches" / f"batch-{index:05d}.parquet"


def pending_batches(work_dir: Path, count: int) -> list[int]:
    """Indices of the plan's batches that have no output yet."""
    return [index for index in range(count) if not batch_path(work_dir, index).exists()]


class DecodeSettings(TypedDict):
    """The keyword arguments of :func:`decode_batch` that are the same for every batch of a run."""

    horizon: int | None
    greedy: bool
    temperature: float | dict[str, float]
    seed: int
    keep_implausible: bool
    project_states: bool | None


def decode_batch(
    model: Any,
    suite: EnvSuite,
    items: list[Item],
    index: int,
    *,
    horizon: int | None,
    greedy: bool,
    temperature: float | dict[str, float],
    seed: int,
    keep_implausible: bool,
    project_states: bool | None = None,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Imagine, label and judge one batch; returns schema rows and their verdicts.

    Each rollout runs under its level's protocol (at most ``horizon`` actions when given). Unless implausible
    rollouts are kept, a rollout stops at its first implausible state (it is dropped). ``project_states``:
    decoded states go through the environment's projection (``ImagineSettings.project_states``; ``None``: the
    environment's ``project_in_imagination``).
    """
    device = next(model.parameters()).device  # a CUDA generator for a model on a GPU (no host round trip)
    generator = torch.Generator(device=device).manual_seed(
        int(np.random.default_rng([seed, index]).integers(2**62))
    )
    levels = [item.level for item in items]
    stop = judge_stop(
        suite, [item.goal_id for item in items], levels, implausible=not keep_implausible, horizon=horizon
    )
    decoded = model.generate_rollouts(
        [item.sentence for item in items],
        initial_states(suite, items),
        horizon=decoding_horizon(suite, levels, horizon),
        greedy=greedy,
        temperature=[temperature[level] for level in levels]
        if isinstance(temperature, dict)
        else temperature,
        generator=generator,
        stop=stop,
        project=state_projection(suite) if _projects(suite, project_states) else None,
    )
    rows, verdicts = [], []
    for b, item in enumerate(items):
        observations, actions = decoded.rollout(b)
        labelled = label_rollout(suite, item.goal_id, item.level, observations, actions)
        verdicts.append(verdict(suite, labelled["observations"]))
        rows.append(
            {
                "episode_id": item.index,
                "env": suite.name,
                "source": "imaginary",
                "level": item.level,
                "goal_id": item.goal_id,
                "instruction": item.sentence,
                "seed": item.reset_seed,
                **labelled,
            }
        )
    return rows, verdicts


def write_batch(
    work_dir: Path, index: int, rows: list[dict[str, Any]], verdicts: list[str], suite: EnvSuite
) -> None:
    """Write a batch's rows and verdicts; the parquet file appears last and atomically."""
    path = batch_path(work_dir, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(verdicts))
    partial = path.with_suffix(f".{os.getpid()}.partial")
    rollouts_to_dataset(rows, suite.spec).to_parquet(str(partial))
    partial.rename(path)


def _projects(suite: EnvSuite, project_states: bool | None) -> bool:
    return suite.project_in_imagination if project_states is None else project_states


def merge(work_dir: Path, count: int, *, keep_implausible: bool) -> tuple[datasets.Dataset, FilterStats]:
    """All batches in plan order, implausible rollouts dropped (or kept), with the verdict counts."""
    stats = FilterStats()
    parts = []
    for index in range(count):
        path = batch_path(work_dir, index)
        part = datasets.Dataset.from_parquet(str(path))
        verdicts = json.loads(path.with_suffix(".json").read_text())
        for level, judged in zip(part["level"], verdicts, strict=True):
            stats.add(level, judged)
        keep = [i for i, judged in enumerate(verdicts) if keep_implausible or judged == PLAUSIBLE]
        parts.append(part.select(keep))
    return datasets.concatenate_datasets(parts), stats


class ImagineModule(L.LightningModule):
    """Decodes plan batches in ``predict_step`` (one batch index per step) and writes their files."""

    def __init__(
        self,
        model: Any,
        suite: EnvSuite,
        plan: list[list[Item]],
        work_dir: Path,
        *,
        horizon: int | None,
        greedy: bool,
        temperature: float | dict[str, float],
        seed: int,
        keep_implausible: bool,
        project_states: bool | None = None,
        progress: Any = None,
    ) -> None:
        super().__init__()
        self.model, self.suite, self.plan, self.work_dir = model, suite, plan, work_dir
        self.settings: DecodeSettings = {
            "horizon": horizon,
            "greedy": greedy,
            "temperature": temperature,
            "seed": seed,
            "keep_implausible": keep_implausible,
            "project_states": project_states,
        }
        self.progress = progress

    @override
    def predict_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        for index in batch.tolist():
            if batch_path(self.work_dir, index).exists():  # a padded duplicate of another rank's batch
                continue
            rows, verdicts = decode_batch(self.model, self.suite, self.plan[index], index, **self.settings)
            write_batch(self.work_dir, index, rows, verdicts, self.suite)
            if self.progress is not None:
                self.progress.update(len(rows))
