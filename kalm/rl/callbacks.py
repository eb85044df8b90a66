"""Evaluation during training: every N optimizer steps, roll the policy out per level and log the rates."""

from __future__ import annotations

from typing import Any

import lightning as L
from typing_extensions import override

from kalm.envs import LEVELS
from kalm.errors import ConfigError
from kalm.rl.evaluation import evaluate_policy
from kalm.rl.goal_encoder import GoalEncoder


class EvaluationCallback(L.Callback):
    """Log ``eval/success_rate/<level>`` every ``every_n_steps`` steps (and at the end of training).

    Args:
        every_n_steps: optimizer steps between evaluations.
        levels: goal levels to evaluate.
        episodes: episodes per level (fixed cases, see :func:`kalm.rl.evaluation.evaluation_cases`).
        seed: seed of the cases; the same every time, so successive evaluations are comparable.
        num_envs: environments stepped in lockstep.
    """

    def __init__(
        self,
        *,
        every_n_steps: int = 5000,
        levels: list[str] | None = None,
        episodes: int = 20,
        seed: int = 0,
        num_envs: int = 8,
    ) -> None:
        if every_n_steps < 1:
            raise ConfigError(f"every_n_steps={every_n_steps!r} is invalid; expected a positive integer")
        self.every_n_steps = every_n_steps
        self.levels = list(levels or LEVELS)
        self.episodes = episodes
        self.seed = seed
        self.num_envs = num_envs
        self.history: list[tuple[int, dict[str, float]]] = []

    @override
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        last = self.history[-1][0] if self.history else 0
        if trainer.global_step // self.every_n_steps > last // self.every_n_steps:  # K updates per batch may
            self._evaluate(trainer, pl_module)  # step over the exact multiple

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        if not self.history or self.history[-1][0] != trainer.global_step:
            self._evaluate(trainer, pl_module, log=False)

    def _evaluate(self, trainer: L.Trainer, pl_module: Any, log: bool = True) -> None:
        """Rank 0 plays the cases (every rank holds the same weights); every rank logs its rates."""
        rates: dict[str, float] = {}
        if trainer.is_global_zero:
            datamodule = getattr(trainer, "datamodule", None)
            encoder = getattr(datamodule, "encoder", None) or GoalEncoder(
                pl_module.hparams.goal_encoder_id
            ).standardized(pl_module.goal_standardization)
            results = evaluate_policy(
                pl_module.policy,
                pl_module.hparams.env_name,
                encoder,
                levels=self.levels,
                episodes=self.episodes,
                seed=self.seed,
                num_envs=self.num_envs,
            )
            rates = {level: result.rate for level, result in results.items()}
        rates = trainer.strategy.broadcast(rates)
        self.history.append((trainer.global_step, rates))
        metrics = {f"eval/success_rate/{level}": rate for level, rate in rates.items()}
        if log:
            pl_module.log_dict(metrics)
        else:  # self.log is not allowed in on_train_end: write to the loggers directly
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
