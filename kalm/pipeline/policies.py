"""The offline-RL stages of a run: train the baseline and the KALM policy the same way, evaluate both."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from kalm.envs.base import EnvSuite
from kalm.envs.cases import UNSEEN_PHRASINGS
from kalm.errors import ConfigError
from kalm.pipeline.config import RunConfig
from kalm.pipeline.stages import cached
from kalm.pipeline.state import RunState, stage_key

POLICIES = ("baseline", "kalm")
"""``baseline`` learns from real data only; ``kalm`` from real plus imaginary data (mixed per batch)."""


def sides(config: RunConfig) -> dict[str, list[str] | None]:
    """The policies a run trains, with the imaginary levels each learns from (``None``: real data only).

    ``learn.policy_protocol: pooled`` trains one KALM policy on every imagined level; ``per_level`` one per
    level (``kalm/<level>``), as the paper does.
    """
    if config.learn.policy_protocol == "pooled":
        return {"baseline": None, "kalm": list(config.imagine.levels)}
    if config.learn.policy_protocol == "per_level":
        return {"baseline": None, **{f"kalm/{level}": [level] for level in config.imagine.levels}}
    raise ConfigError(
        f"learn.policy_protocol={config.learn.policy_protocol!r}; expected 'pooled' or 'per_level'"
    )


def train_policies(
    config: RunConfig,
    suite: EnvSuite,
    state: RunState,
    real: dict[str, Any],
    imaginary: dict[str, Any],
    folder: Path,
) -> dict[str, dict[str, Any]]:
    """Train every side (``sides``) with the same algorithm, steps and seeds; returns their folders per
    seed."""
    if config.learn.num_seeds < 1:
        raise ConfigError(f"learn.num_seeds={config.learn.num_seeds}; expected at least 1")
    trained = {}
    for name, levels in sides(config).items():
        sources = [real["commit"]] + ([imaginary["commit"], levels] if levels else [])
        key = stage_key("learn", name, suite.name, config.seed, dataclasses.asdict(config.learn), sources)
        data = imaginary if levels else None

        def produce(
            name: str = name,
            key: str = key,
            data: dict[str, Any] | None = data,
            levels: list[str] | None = levels,
        ) -> dict[str, Any]:
            seeds = range(config.seed, config.seed + config.learn.num_seeds)
            slug = name.replace("/", "-")
            return {
                "seeds": [
                    _fit(
                        config,
                        suite,
                        seed,
                        real,
                        data,
                        levels,
                        folder / "policies" / f"{slug}-{key}" / f"seed-{seed}",
                    )
                    for seed in seeds
                ]
            }

        trained[name] = cached(state, f"learn_{name}", key, produce, every_rank=True)
    return trained


def _fit(
    config: RunConfig,
    suite: EnvSuite,
    seed: int,
    real: dict[str, Any],
    imaginary: dict[str, Any] | None,
    levels: list[str] | None,
    folder: Path,
) -> dict[str, Any]:
    """Train one policy (resuming from its last checkpoint if a run was interrupted).

    With ``imaginary_check: dynamics``, the result holds the check's counts, and for the run's first seed how
    many of the rollouts it confirmed as successful reach their goal when replayed in the simulator (a
    diagnostic, as the imagination stage's replay: the policy never sees it)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from datamodules.transitions import TransitionDataModule
    from kalm.rl.module import OfflineRLModule

    settings = config.learn
    L.seed_everything(seed, verbose=False)
    data = TransitionDataModule(
        **settings.data | ({} if imaginary else {"real_fraction": 1.0}),  # the baseline: real data only
        real=f"{real['repo_id']}@{real['commit']}",
        imaginary=[f"{imaginary['repo_id']}@{imaginary['commit']}"] if imaginary else [],
        imaginary_levels=levels,
        seed=seed,
    )
    module = OfflineRLModule(**settings.model, export_dir=str(folder / "policy"))
    steps, per_item = settings.trainer["max_steps"], settings.data["batches_per_step"]  # updates, K per item
    checkpoints = ModelCheckpoint(
        dirpath=folder / "checkpoints",
        save_last=True,
        every_n_train_steps=max(1, steps // 4 // per_item) * per_item,
    )
    trainer = L.Trainer(
        **dataclasses.asdict(config.trainer),
        **settings.trainer,
        logger=CSVLogger(folder, name="logs"),
        callbacks=[checkpoints],
        default_root_dir=folder,
    )
    last = folder / "checkpoints" / "last.ckpt"
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.exists() else None)
    result = {
        "seed": seed,
        "policy": str(folder / "policy"),
        "steps": trainer.global_step,
        "data": [item for item in data.inputs],
    }
    if data.check_stats:
        result["check"] = data.check_stats
    if data.checked and seed == config.seed:
        from kalm.imagine.replay import replay_agreement

        confirmed = [row for part in data.checked for row in part.with_format("numpy") if row["success"]]
        result["check_replay"] = replay_agreement(suite, confirmed)
    return result


def evaluate_policies(
    config: RunConfig,
    suite: EnvSuite,
    state: RunState,
    policies: dict[str, dict[str, Any]],
    folder: Path,
    model: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Evaluate both policies and the suite's floors on the same cases of every level (training seed ``s`` of
    either side plays the cases of seed ``s``; the floors play all of them), and the grounded ``model`` acting
    as a policy on the first ``evaluate.llm_policy_episodes`` cases of the first seed; returns the report's
    dict and files."""
    settings = config.evaluate
    key = stage_key(
        "evaluate",
        suite.name,
        config.seed,
        dataclasses.asdict(settings),
        {name: [run["policy"] for run in trained["seeds"]] for name, trained in policies.items()},
        model["commit"] if model and settings.llm_policy_episodes else None,
    )

    def produce() -> dict[str, Any]:
        from kalm.rl.evaluation import evaluate_floors, evaluate_policy, pool
        from kalm.rl.policy import load_policy
        from kalm.rl.report import EvalReport

        seeds = [run["seed"] for run in next(iter(policies.values()))["seeds"]]
        columns = report_columns(settings.levels, settings.unseen_phrasings)
        report = EvalReport(
            env=suite.name,
            settings={
                "episodes": settings.episodes,
                "seeds": seeds,
                "algorithm": config.learn.model["algorithm"],
                "policy_protocol": config.learn.policy_protocol,
            },
            comparisons=[("kalm", "baseline")],
        )
        results: dict[str, dict[str, Any]] = {}
        per_seed: dict[str, dict[str, list[float]]] = {}
        for name, trained in policies.items():
            levels = _levels_played(name, columns)
            runs = []
            for run in trained["seeds"]:  # seed s of every side plays the cases of seed s: paired
                loaded = load_policy(run["policy"])
                runs.append(
                    evaluate_policy(
                        loaded.policy,
                        suite,
                        loaded.encoder(),
                        levels=levels,
                        episodes=settings.episodes,
                        seed=run["seed"],
                        progress=True,
                    )
                )
            results[name] = pool(runs)
            per_seed[name] = {level: [result[level].rate for result in runs] for level in levels}
        report.results["baseline"] = results.pop("baseline")
        pooled = results.pop("kalm", None)  # per level: each level's own policy plays it
        report.results["kalm"] = pooled or {
            level: results[f"kalm/{_trained_for(level)}"][level] for level in columns
        }
        report.results.update(results)  # per level: each level's own policy as a row of its own too
        report.add_floors(evaluate_floors(suite, levels=columns, episodes=settings.episodes, seeds=seeds))
        if model is not None and settings.llm_policy_episodes:
            from kalm.grounding.policy import LLM_POLICY

            report.results[LLM_POLICY] = _llm_policy(
                model,
                suite,
                columns,
                min(settings.llm_policy_episodes, settings.episodes),
                seeds[0],
                device=_llm_device(config.trainer.accelerator),
            )
        files = report.save(folder / "evaluation")
        return {
            "report": report.to_dict(),
            "markdown": report.to_markdown(),
            "per_seed": per_seed,
            "files": {kind: str(path) for kind, path in files.items()},
        }

    return cached(state, "evaluate", key, produce)


def _llm_policy(
    model: dict[str, Any],
    suite: EnvSuite,
    levels: list[str],
    episodes: int,
    seed: int,
    *,
    device: str = "cpu",
) -> dict[str, Any]:
    from kalm.grounding.hub import load_grounded
    from kalm.grounding.policy import evaluate_llm_policy

    loaded = load_grounded(model["repo_id"], model["commit"])
    return evaluate_llm_policy(
        loaded.model.to(device).eval(), suite, levels=levels, episodes=episodes, seeds=[seed], progress=True
    )


def _llm_device(accelerator: str) -> str:
    """Where the grounded LM plays as a policy: the run's GPU when it has one (a 30-layer LM is slow on a
    CPU)."""
    import torch

    return "cuda" if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu"


def report_columns(levels: list[str], unseen_phrasings: bool) -> list[str]:
    """The evaluated columns: the levels, with the rephrase goals in held-out sentences right after
    ``rephrase``."""
    if not unseen_phrasings or "rephrase" not in levels:
        return list(levels)
    at = levels.index("rephrase") + 1
    return [*levels[:at], UNSEEN_PHRASINGS, *levels[at:]]


def _trained_for(level: str) -> str:
    """Which per-level KALM policy plays ``level``: its own, and the rephrase policy the training goals."""
    return "rephrase" if level in ("train", UNSEEN_PHRASINGS) else level


def _levels_played(name: str, levels: list[str]) -> list[str]:
    if not name.startswith("kalm/"):
        return levels
    own = name.removeprefix("kalm/")
    return [level for level in levels if _trained_for(level) == own]
