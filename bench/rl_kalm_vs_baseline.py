"""Baseline (real data only) vs KALM (real + imaginary, 1:1 per batch) on CLEVR-Robot, per goal level.

    python bench/rl_kalm_vs_baseline.py [--real 2000] [--imaginary 1000] [--steps 6000] [--episodes 100]

Until a grounded LLM publishes imaginary rollouts, the imaginary data here is an ORACLE stand-in: the
scripted behaviour policy (10 % random actions) run in the simulator on the goals of the novel levels it
can solve (rephrase, easy), phrased with those levels' sentences and labelled ``source="imaginary"``.
It bounds from above what perfectly grounded imagination could add; the hard level gets no imaginary data
(the scripted policy cannot solve compound goals), so it measures generalisation alone. Both policies use
the same learner, steps, seeds and evaluation cases; the report (JSON, markdown, PNG) goes to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning as L
import numpy as np
import torch

from datamodules.transitions import TransitionDataModule
from kalm.collect import collect_rollouts, run_episode
from kalm.data import rollouts_to_dataset, write_rollouts
from kalm.envs import get_suite
from kalm.rl.evaluation import evaluate_policy
from kalm.rl.module import OfflineRLModule
from kalm.rl.report import EvalReport

ORACLE_LEVELS = ("rephrase", "easy")


def oracle_imaginary(episodes: int, seed: int) -> list[dict]:
    """Behaviour-policy rollouts of rephrase and easy goals, labelled imaginary (see the module docstring)."""
    suite = get_suite("clevr")
    env, rows = suite.make(), []
    for level in ORACLE_LEVELS:
        goals = suite.goals(level)
        for _ in range(episodes):
            rng = np.random.default_rng([seed, len(rows)])
            goal = goals[int(rng.integers(len(goals)))].id
            policy = suite.behaviour_policy(noise=0.1, rng=rng)
            rows.append(
                run_episode(
                    env,
                    policy,
                    goal_id=goal,
                    reset_seed=int(rng.integers(2**31)),
                    episode_id=len(rows),
                    env_name="clevr",
                    level=level,
                    source="imaginary",
                )
            )
    return rows


def train(
    name: str, real: Path, imaginary: list[str], args: argparse.Namespace, out: Path
) -> OfflineRLModule:
    torch.manual_seed(args.seed)
    dm = TransitionDataModule(
        real=str(real),
        imaginary=imaginary,
        real_fraction=0.5,
        batch_size=args.batch_size,
        steps_per_epoch=1000,
        batches_per_step=4,
        seed=args.seed,
    )
    module = OfflineRLModule(algorithm=args.algorithm, export_dir=str(out / name / "policy"))
    trainer = L.Trainer(
        max_steps=args.steps,
        default_root_dir=out / name,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(module, datamodule=dm)
    module.encoder = dm.encoder  # reused for evaluation
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=int, default=2000, help="real episodes (training goals)")
    parser.add_argument(
        "--imaginary", type=int, default=1000, help="oracle imaginary episodes per novel level"
    )
    parser.add_argument("--algorithm", default="bc")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/kalm_vs_baseline"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    suite = get_suite("clevr")
    real = write_rollouts(
        collect_rollouts(
            suite, episodes=args.real, seed=args.seed, random_fraction=0.1, progress=False
        ).dataset,
        args.out / "data" / "real",
        env="clevr",
        spec=suite.spec,
    )
    imaginary = write_rollouts(
        rollouts_to_dataset(oracle_imaginary(args.imaginary, args.seed + 1), suite.spec),
        args.out / "data" / "imaginary-oracle",
        env="clevr",
        spec=suite.spec,
    )
    report = EvalReport(
        "clevr",
        settings={
            "episodes": args.episodes,
            "seed": args.seed,
            "steps": args.steps,
            "algorithm": args.algorithm,
            "real_episodes": args.real,
            "imaginary_episodes_per_level": args.imaginary,
            "imaginary": "oracle (scripted policy on rephrase + easy goals)",
        },
    )
    for folder, name, extra in (
        ("baseline", f"{args.algorithm} baseline (real)", []),
        ("kalm", f"{args.algorithm} + KALM (real + imaginary)", [str(imaginary)]),
    ):
        module = train(folder, real, extra, args, args.out)
        report.results[name] = evaluate_policy(
            module.policy, suite, module.encoder, episodes=args.episodes, seed=args.seed
        )
    paths = report.save(args.out)
    print(report.to_markdown())
    print(f"report -> {paths['markdown']}")


if __name__ == "__main__":
    main()
