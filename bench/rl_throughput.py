"""Updates/s of OfflineRLModule (Lightning) against a plain PyTorch loop on the same TorchRL loss and batches.

    python bench/rl_throughput.py [--chunks 5] [--batch-size 256] [--threads 1] [--only bc cql]

For every learner, the same pre-built batches (from a ``TransitionDataModule``: real CLEVR-Robot data for
the discrete learners, a synthetic 91-d / 4-action continuous dataset shaped like Meta-World for the
continuous ones) are fed to (a) a loop that calls the learner's TorchRL loss, backward, Adam and the
target update by hand and (b) ``Trainer.fit`` of an ``OfflineRLModule`` with the same settings (logging
every 50 steps, no progress bar, no checkpoints), which gets them as the data module hands its stream
over: a sized iterable of whole batches, no ``DataLoader``. The K=4 column stacks 4 batches per dataloader
item (``batches_per_step``, as the ``configs/learn`` presets do), so Lightning's per-item cost is shared by
4 updates.

The two run interleaved in one process: after every 50 dataloader items of the fit (one logging interval)
a callback makes the same updates on the same batches in the plain loop, and each such chunk gives one
paired ratio; the table shows the medians over ``--chunks`` chunks after one warm-up chunk, and the
Lightning overhead ``1 - lightning / plain`` (target: <= 10 %). Pairing chunks a few hundred milliseconds
apart keeps the ratio steady when other jobs share the machine; time is this process's CPU time by default
(one torch thread), ``--clock wall`` uses wall time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import numpy as np
import torch

from datamodules.transitions import TransitionDataModule
from kalm.collect import collect_rollouts
from kalm.data import RolloutSpec, rollouts_to_dataset, write_rollouts
from kalm.envs import get_suite
from kalm.rl.learners import make_learner
from kalm.rl.module import OfflineRLModule

CASES = [
    ("bc", True),
    ("cql", True),
    ("iql", True),
    ("bc", False),
    ("cql", False),
    ("iql", False),
    ("td3bc", False),
    ("awac", False),
]
CLOCK = [time.process_time]
"""The timer: this process's CPU time by default (robust when other jobs share the cores), or wall time."""
CONTINUOUS = RolloutSpec(obs_dim=91, action_dim=4, discrete=False, horizon=100)


def continuous_dataset(folder: Path, episodes: int = 50) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for index in range(episodes):
        length = int(rng.integers(20, CONTINUOUS.horizon + 1))
        rows.append(
            {
                "episode_id": index,
                "env": "synthetic",
                "source": "real",
                "level": "train",
                "goal_id": f"task-{index % 10}",
                "instruction": f"solve task number {index % 10}",
                "seed": index,
                "length": length,
                "observations": rng.normal(size=(length + 1, 91)).astype(np.float32),
                "actions": rng.uniform(-1, 1, (length, 4)).astype(np.float32),
                "rewards": rng.random(length).astype(np.float32),
                "terminated": bool(index % 2),
                "truncated": not index % 2,
                "success": bool(index % 2),
            }
        )
    return write_rollouts(rollouts_to_dataset(rows, CONTINUOUS), folder, env="synthetic", spec=CONTINUOUS)


def make_batches(root: Path, batch_size: int, count: int) -> dict[bool, tuple[list, TransitionDataModule]]:
    suite = get_suite("clevr")
    clevr = write_rollouts(
        collect_rollouts(suite, episodes=300, progress=False).dataset,
        root / "clevr",
        env="clevr",
        spec=suite.spec,
    )
    out = {}
    for discrete, folder in ((True, clevr), (False, continuous_dataset(root / "continuous"))):
        dm = TransitionDataModule(real=str(folder), batch_size=batch_size, steps_per_epoch=count)
        dm.setup("fit")
        out[discrete] = (list(dm.train_dataloader()), dm)
    return out


LOG_EVERY = 50
"""Lightning's default ``log_every_n_steps``: one dataloader item in 50 logs the losses, one in each chunk."""


class PlainLoop:
    """The baseline: the learner's TorchRL loss, backward, Adam and target update, called by hand."""

    def __init__(self, algorithm: str, dm: TransitionDataModule, batches: list) -> None:
        torch.manual_seed(0)
        spec = dm.spec
        self.learner = make_learner(
            algorithm,
            obs_dim=spec.obs_dim,
            goal_dim=dm.goal_dim,
            action_dim=spec.action_dim,
            discrete=spec.discrete,
        )
        self.optimizer = torch.optim.Adam(self.learner.param_groups)
        self.batches, self.step = batches, 0

    def run(self, updates: int) -> float:
        """Make ``updates`` updates on the next batches (the ones the fit used); returns the time taken."""
        learner, optimizer = self.learner, self.optimizer
        start = CLOCK[0]()
        for _ in range(updates):
            batch = self.batches[self.step % len(self.batches)]
            losses = learner.loss(batch.copy())
            objective = learner.objective(losses, self.step)
            optimizer.zero_grad()
            objective.backward()
            optimizer.step()
            learner.update_targets(self.step)
            self.step += 1
        return CLOCK[0]() - start


class _Replay:
    """``length`` dataloader items cycling through ``items``: a sized iterable like the data module's
    stream."""

    def __init__(self, items: list, length: int) -> None:
        self.items, self.length = items, length

    def __iter__(self) -> Iterator:
        return (self.items[index % len(self.items)] for index in range(self.length))

    def __len__(self) -> int:
        return self.length


class _Interleave(L.Callback):
    """After every ``LOG_EVERY`` items of the fit, make their updates in the plain loop; time both."""

    def __init__(self, plain: PlainLoop, updates_per_item: int) -> None:
        self.plain, self.updates = plain, LOG_EVERY * updates_per_item
        self.items, self.start = 0, 0.0
        self.chunks: list[tuple[float, float]] = []  # (Lightning, plain) seconds per chunk

    def on_train_start(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
        self.start = CLOCK[0]()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        self.items += 1
        if self.items % LOG_EVERY:
            return
        lightning = CLOCK[0]() - self.start
        self.chunks.append((lightning, self.plain.run(self.updates)))
        self.start = CLOCK[0]()


def measure(
    algorithm: str, dm: TransitionDataModule, batches: list, root: Path, chunks: int, per_step: int = 1
) -> list[tuple[float, float]]:
    """(Lightning, plain) updates/s per chunk, the warm-up chunk left out; ``per_step`` batches per item."""
    items = batches
    if per_step > 1:
        items = [torch.stack(batches[i : i + per_step]) for i in range(0, len(batches), per_step)]
    torch.manual_seed(0)
    spec = dm.spec
    module = OfflineRLModule(
        algorithm=algorithm,
        obs_dim=spec.obs_dim,
        goal_dim=dm.goal_dim,
        action_dim=spec.action_dim,
        discrete=spec.discrete,
        export_dir=str(root / "policy"),
    )
    clock = _Interleave(PlainLoop(algorithm, dm, batches), per_step)
    length = (chunks + 1) * LOG_EVERY
    trainer = L.Trainer(
        max_steps=length * per_step,
        logger=False,
        log_every_n_steps=LOG_EVERY,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[clock],
        default_root_dir=root,
    )
    trainer.fit(module, train_dataloaders=_Replay(items, length))
    updates = LOG_EVERY * per_step
    return [(updates / lightning, updates / plain) for lightning, plain in clock.chunks[1:]]


def summary(chunks: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Median Lightning and plain updates/s and the median paired overhead ``1 - lightning / plain``."""
    return (
        statistics.median(lightning for lightning, _ in chunks),
        statistics.median(plain for _, plain in chunks),
        statistics.median(1 - lightning / plain for lightning, plain in chunks),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=5, help=f"timed chunks of {LOG_EVERY} items per fit")
    parser.add_argument("--batches-per-step", type=int, default=4, help="K of the stacked Lightning variant")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="time with this process's CPU time (default; needs --threads 1) or wall time",
    )
    parser.add_argument("--only", nargs="*", default=None, help="algorithms to run, e.g. bc cql")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    CLOCK[0] = time.process_time if args.clock == "cpu" else time.perf_counter
    k = args.batches_per_step
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_batches(root, args.batch_size, 2 * LOG_EVERY * k)  # cycled; a multiple of K
        print(
            f"batch {args.batch_size}, median of {args.chunks} paired chunks of {LOG_EVERY} items, "
            f"{args.threads} thread(s), {args.clock} clock, torch {torch.__version__}"
        )
        print(
            f"{'learner':<18}{'plain':>8}{'Lightning K=1':>15}{'overhead':>10}"
            f"{'plain':>8}{f'Lightning K={k}':>15}{'overhead':>10}"
            "   (updates/s; each plain rate is the one paired with its Lightning column)"
        )
        for algorithm, discrete in CASES:
            if args.only and algorithm not in args.only:
                continue
            batches, dm = data[discrete]
            name = f"{algorithm} ({'discrete' if discrete else 'continuous'})"
            row = f"{name:<18}"
            for per_step in (1, k):
                lightning, plain, overhead = summary(
                    measure(algorithm, dm, batches, root, args.chunks, per_step=per_step)
                )
                row += f"{plain:>8.1f}{lightning:>15.1f}{overhead:>10.1%}"
            print(row)


if __name__ == "__main__":
    main()
