"""Updates/s of OfflineRLModule (Lightning) against a plain PyTorch loop on the same TorchRL loss and batches.

    python bench/rl_throughput.py [--steps 300] [--batch-size 256] [--repeats 3] [--threads 1]

For every learner, the same pre-built batches (from a ``TransitionDataModule``: real CLEVR-Robot data for
the discrete learners, a synthetic 91-d / 4-action continuous dataset shaped like Meta-World for the
continuous ones) are fed to (a) a loop that calls the learner's TorchRL loss, backward, Adam and the
target update by hand and (b) ``Trainer.fit`` of an ``OfflineRLModule`` with the same settings (logging
every 50 steps, no progress bar, no checkpoints). Both run in this process, alternating, after
``--warmup`` untimed steps; the table shows the median over repeats and the Lightning overhead
``1 - lightning / plain`` (target: <= 10 %). Time is this process's CPU time by default (one torch
thread), so other jobs on a shared machine disturb the ratio less; ``--clock wall`` uses wall time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from datamodules.mixing import identity
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


def plain_loop(algorithm: str, dm: TransitionDataModule, batches: list, warmup: int) -> float:
    torch.manual_seed(0)
    spec = dm.spec
    learner = make_learner(
        algorithm,
        obs_dim=spec.obs_dim,
        goal_dim=dm.goal_dim,
        action_dim=spec.action_dim,
        discrete=spec.discrete,
    )
    optimizer = torch.optim.Adam(learner.param_groups)
    for step, batch in enumerate(batches):
        if step == warmup:
            start = CLOCK[0]()
        losses = learner.loss(batch.copy())
        objective = learner.objective(losses, step)
        optimizer.zero_grad()
        objective.backward()
        optimizer.step()
        learner.update_targets(step)
    return (len(batches) - warmup) / (CLOCK[0]() - start)


class _Clock(L.Callback):
    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end = warmup, 0.0, 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # type: ignore[no-untyped-def]
        if batch_idx == self.warmup:
            self.start = CLOCK[0]()

    def on_train_end(self, trainer, pl_module) -> None:  # type: ignore[no-untyped-def]
        self.end = CLOCK[0]()


def lightning_loop(
    algorithm: str, dm: TransitionDataModule, batches: list, warmup: int, root: Path, per_step: int = 1
) -> float:
    """Updates/s of ``Trainer.fit``; with ``per_step = K`` each dataloader item stacks K of the batches."""
    torch.manual_seed(0)
    if per_step > 1:
        batches = [
            torch.stack(batches[i : i + per_step]) for i in range(0, len(batches) - per_step + 1, per_step)
        ]
        warmup = warmup // per_step
    spec = dm.spec
    module = OfflineRLModule(
        algorithm=algorithm,
        obs_dim=spec.obs_dim,
        goal_dim=dm.goal_dim,
        action_dim=spec.action_dim,
        discrete=spec.discrete,
        export_dir=str(root / "policy"),
    )
    clock = _Clock(warmup)
    trainer = L.Trainer(
        max_steps=len(batches) * per_step,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        callbacks=[clock],
        default_root_dir=root,
    )
    trainer.fit(module, train_dataloaders=DataLoader(batches, batch_size=None, collate_fn=identity))
    return (len(batches) - warmup) * per_step / (clock.end - clock.start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="timed updates per run")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batches-per-step", type=int, default=4, help="K of the stacked Lightning variant")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
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
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_batches(root, args.batch_size, args.steps + args.warmup)
        print(
            f"batch {args.batch_size}, {args.steps} timed updates, median of {args.repeats}, "
            f"{args.threads} thread(s), {args.clock} clock, torch {torch.__version__}"
        )
        k = args.batches_per_step
        print(
            f"{'learner':<18}{'plain':>8}{'Lightning K=1':>15}{'overhead':>10}"
            f"{f'Lightning K={k}':>15}{'overhead':>10}"
            "   (updates/s)"
        )
        for algorithm, discrete in CASES:
            if args.only and algorithm not in args.only:
                continue
            batches, dm = data[discrete]
            plain, single, stacked = [], [], []
            for _ in range(args.repeats):  # interleaved, so slow drifts of the machine hit all three alike
                plain.append(plain_loop(algorithm, dm, batches, args.warmup))
                single.append(lightning_loop(algorithm, dm, batches, args.warmup, root))
                stacked.append(lightning_loop(algorithm, dm, batches, args.warmup, root, per_step=k))
            p, q, r = (statistics.median(values) for values in (plain, single, stacked))
            name = f"{algorithm} ({'discrete' if discrete else 'continuous'})"
            print(f"{name:<18}{p:>8.1f}{q:>15.1f}{1 - q / p:>10.1%}{r:>15.1f}{1 - r / p:>10.1%}")


if __name__ == "__main__":
    main()
