"""The offline-RL stages of a run: train the baseline and the KALM policy the same way, evaluate both."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kalm.envs.base import EnvSuite
from kalm.errors import ConfigError
from kalm.pipeline.config import RunConfig
from kalm.pipeline.stages import cached
from kalm.pipeline.state import RunState, stage_key

POLICIES = ("baseline", "kalm")
"""``baseline`` learns from real data only; ``kalm`` from real plus imaginary data (mixed per batch)."""


def train_policies(config: RunConfig, suite: EnvSuite, state: RunState, real: dict[str, Any],
                   imaginary: dict[str, Any], folder: Path) -> dict[str, dict[str, Any]]:
    """Train both policies with the same algorithm, steps and seeds; returns their folders per seed."""
    if config.learn.num_seeds < 1:
        raise ConfigError(f"learn.num_seeds={config.learn.num_seeds}; expected at least 1")
    trained = {}
    for name in POLICIES:
        sources = [real["commit"]] + ([imaginary["commit"]] if name == "kalm" else [])
        key = stage_key("learn", name, suite.name, config.seed, dataclasses.asdict(config.learn), sources)
        data = imaginary if name == "kalm" else None

        def produce(name: str = name, key: str = key, data: dict[str, Any] | None = data) -> dict[str, Any]:
            seeds = range(config.seed, config.seed + config.learn.num_seeds)
            return {"seeds": [_fit(config, seed, real, data, folder / "policies" / f"{name}-{key}" / f"seed-{seed}")
                              for seed in seeds]}

        trained[name] = cached(state, f"learn_{name}", key, produce)
    return trained


def _fit(config: RunConfig, seed: int, real: dict[str, Any], imaginary: dict[str, Any] | None,
         folder: Path) -> dict[str, Any]:
    """Train one policy (resuming from its last checkpoint if a run was interrupted)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from datamodules.transitions import TransitionDataModule
    from kalm.rl.module import OfflineRLModule

    settings = config.learn
    L.seed_everything(seed, verbose=False)
    data = TransitionDataModule(
        real=f"{real['repo_id']}@{real['commit']}",
        imaginary=[f"{imaginary['repo_id']}@{imaginary['commit']}"] if imaginary else [],
        imaginary_successful_only=settings.imaginary_successful_only,
        real_fraction=1.0 - settings.imaginary_ratio if imaginary else 1.0, batch_size=settings.batch_size,
        steps_per_epoch=settings.steps, batches_per_step=settings.batches_per_step, seed=seed)
    module = OfflineRLModule(algorithm=settings.algorithm, gamma=settings.gamma, hyper=dict(settings.hyper),
                             export_dir=str(folder / "policy"))
    per_item = settings.batches_per_step  # global_step counts updates, K per dataloader item
    checkpoints = ModelCheckpoint(dirpath=folder / "checkpoints", save_last=True,
                                  every_n_train_steps=max(1, settings.steps // 4 // per_item) * per_item)
    trainer = L.Trainer(**dataclasses.asdict(config.trainer), max_steps=settings.steps, logger=CSVLogger(folder, name="logs"),
                        callbacks=[checkpoints], log_every_n_steps=50, default_root_dir=folder,
                        num_sanity_val_steps=0, limit_val_batches=0)
    last = folder / "checkpoints" / "last.ckpt"
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.exists() else None)
    return {"seed": seed, "policy": str(folder / "policy"), "steps": trainer.global_step,
            "data": [item for item in data.inputs]}


def evaluate_policies(config: RunConfig, suite: EnvSuite, state: RunState, policies: dict[str, dict[str, Any]],
                      folder: Path) -> dict[str, Any]:
    """Evaluate both policies on the same cases of every level; returns the report's dict and files."""
    settings = config.evaluate
    key = stage_key("evaluate", suite.name, config.seed, dataclasses.asdict(settings),
                    {name: [run["policy"] for run in trained["seeds"]] for name, trained in policies.items()})

    def produce() -> dict[str, Any]:
        from kalm.rl.evaluation import evaluate_policy, pool
        from kalm.rl.goal_encoder import GoalEncoder
        from kalm.rl.policy import load_policy
        from kalm.rl.report import EvalReport

        seeds = [run["seed"] for run in next(iter(policies.values()))["seeds"]]
        report = EvalReport(env=suite.name, settings={"episodes": settings.episodes, "seed": config.seed,
                                                      "algorithm": config.learn.algorithm, "seeds": seeds})
        per_seed: dict[str, dict[str, list[float]]] = {}
        for name, trained in policies.items():
            runs = []
            for run in trained["seeds"]:
                loaded = load_policy(run["policy"])
                runs.append(evaluate_policy(loaded.policy, suite, GoalEncoder(loaded.goal_encoder),
                                            levels=list(settings.levels), episodes=settings.episodes,
                                            seed=config.seed, progress=True))
            report.results[name] = pool(runs)
            per_seed[name] = {level: [result[level].rate for result in runs] for level in settings.levels}
        files = report.save(folder / "evaluation")
        return {"report": report.to_dict(), "markdown": report.to_markdown(), "per_seed": per_seed,
                "files": {kind: str(path) for kind, path in files.items()}}

    return cached(state, "evaluate", key, produce)
