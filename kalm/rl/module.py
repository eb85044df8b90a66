"""OfflineRLModule: one LightningModule around the TorchRL losses of :mod:`kalm.rl.learners`.

No second training loop: Lightning drives the updates through its manual-optimisation API
(``manual_backward`` and the Lightning-wrapped optimizer), one Adam optimizer with a parameter group per
network (see :mod:`kalm.rl.learners` for why that is exact), and the target networks are updated after
each update. Manual rather than automatic optimisation because it costs less per step (the closure
machinery is measurable next to 4 ms BC updates, see ``bench/rl_throughput.py``) and because a
dataloader item may stack ``K`` batches (``batches_per_step``) that make ``K`` updates, which shares
Lightning's per-step overhead among them; ``global_step`` counts updates either way.

The networks need the input sizes of the data, so they are built in :meth:`setup` from the attached
``TransitionDataModule`` (``spec`` and ``goal_dim``) unless the sizes were given, and the sizes are then
saved with the hyperparameters so that checkpoints reload without data.

Example:
    >>> module = OfflineRLModule(algorithm="bc", obs_dim=10, goal_dim=384, action_dim=40, discrete=True)
    >>> module.policy(torch.zeros(2, 394)).shape
    torch.Size([2])
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.core.optimizer import LightningOptimizer
from tensordict import TensorDictBase
from typing_extensions import override

from kalm.errors import ConfigError
from kalm.rl.contracts import transition_data
from kalm.rl.goal_encoder import DEFAULT_GOAL_ENCODER, GoalStandardization
from kalm.rl.learners import Learner, make_learner, resolve_hyper
from kalm.rl.networks import NetworkConfig, Policy
from kalm.rl.policy import save_policy

log = logging.getLogger(__name__)
_DIMS = ("obs_dim", "goal_dim", "action_dim", "discrete")


class OfflineRLModule(L.LightningModule):
    """Goal-conditioned offline RL with a TorchRL loss (BC, CQL, IQL, TD3+BC, AWAC).

    Args:
        algorithm: ``bc``, ``cql``, ``iql`` (discrete or continuous), ``td3bc``, ``awac`` (continuous).
        gamma: discount factor, explicit (the authors' runs were effectively undiscounted, reference §6.5).
        hidden: hidden layer sizes of every network (the paper: ``[256, 256]``).
        activation: hidden activation (``relu``).
        hyper: algorithm hyperparameters overriding ``kalm.rl.learners.DEFAULTS``.
        obs_dim: state size (default: from the datamodule).
        goal_dim: goal-embedding size (default: from the datamodule).
        action_dim: number of discrete actions or continuous action length (default: from the datamodule).
        discrete: whether actions are discrete (default: from the datamodule).
        goal_encoder_id: id of the goal encoder the policy is trained with (default: the datamodule's).
        env_name: environment name saved with the policy (default: the datamodule's).
        export_dir: where :meth:`on_fit_end` saves the policy folder (default ``<log dir>/policy``).

    The loss terms are logged on the batches the trainer writes logs for (``trainer.log_every_n_steps``),
    not on every update: ``self.log`` costs about as much as a small update.
    """

    def __init__(
        self,
        *,
        algorithm: str = "bc",
        gamma: float = 0.99,
        hidden: list[int] | None = None,
        activation: str = "relu",
        hyper: dict[str, float] | None = None,
        obs_dim: int | None = None,
        goal_dim: int | None = None,
        action_dim: int | None = None,
        discrete: bool | None = None,
        goal_encoder_id: str | None = None,
        env_name: str | None = None,
        export_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        resolve_hyper(algorithm, hyper)  # fail at construction on an unknown algorithm or hyperparameter
        self.network = NetworkConfig(tuple(hidden or (256, 256)), activation)
        self.learner: Learner | None = None
        self.goal_standardization: GoalStandardization | None = None
        """The goal standardization of the training data (``TransitionDataModule``), saved with the policy."""
        self.automatic_optimization = False  # see the module docstring
        if all(self.hparams[name] is not None for name in _DIMS):
            self._build()

    @property
    def _hp(self) -> Any:
        """The hyperparameters, with attribute access."""
        return self.hparams

    @property
    def policy(self) -> Policy:
        """The deterministic policy (shares the trained parameters)."""
        if self.learner is None:
            raise ConfigError(
                "the policy is built in setup(): attach a TransitionDataModule or give the sizes"
            )
        return self.learner.policy

    def _build(self) -> None:
        hp = self._hp
        self.learner = make_learner(
            hp.algorithm,
            obs_dim=hp.obs_dim,
            goal_dim=hp.goal_dim,
            action_dim=hp.action_dim,
            discrete=hp.discrete,
            gamma=hp.gamma,
            network=self.network,
            hyper=hp.hyper,
        )
        self.loss = (
            self.learner.loss
        )  # registered as a submodule: parameters, targets and checkpoints follow it

    @override
    def setup(self, stage: str) -> None:
        if self.learner is not None:
            return
        data = transition_data(
            getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        )
        if data is None or data.spec is None:
            raise ConfigError(
                "OfflineRLModule needs obs_dim/goal_dim/action_dim/discrete or a TransitionDataModule"
            )
        spec = data.spec
        self.hparams.update(
            obs_dim=spec.obs_dim,
            goal_dim=data.goal_dim,
            action_dim=spec.action_dim,
            discrete=spec.discrete,
        )
        self._hp.goal_encoder_id = self._hp.goal_encoder_id or data.encoder.model_id
        self.goal_standardization = data.encoder.standardization
        self._hp.env_name = self._hp.env_name or data.env
        self._build()

    def _common_step(self, batch: TensorDictBase, stage: str, log: bool = True) -> torch.Tensor:
        """The learner's objective on one ``[B]`` batch, logging its terms when ``log``."""
        assert self.learner is not None
        losses = self.learner.loss(batch.copy())  # a shallow copy: losses write scratch keys into their input
        total = self.learner.objective(losses, self.global_step)
        if log:
            self._log_terms(losses, total, batch, stage)
        return total

    def _log_terms(
        self, losses: TensorDictBase, total: torch.Tensor, batch: TensorDictBase, stage: str
    ) -> None:
        """Log the scalar loss terms, the objective (also on the progress bar) and the imaginary fraction.

        The objective goes to the CPU here, once per logging step: Lightning turns progress-bar values into
        Python numbers after every step, which on a GPU would wait for the device at every update.
        """
        size = batch.batch_size[0]
        metrics = {f"{stage}/{key}": value.detach() for key, value in losses.items() if value.ndim == 0}
        metrics[f"{stage}/imaginary_fraction"] = batch["imaginary"].float().mean()
        self.log_dict(metrics, batch_size=size)
        self.log(f"{stage}/loss", total.detach().cpu(), batch_size=size, prog_bar=True)

    def _writes_logs(self) -> bool:
        """Whether the trainer writes logs after this dataloader item (every ``log_every_n_steps`` items).

        Lightning's own rule (its logger connector's ``should_update_logs``) on public loop state: the
        ``n``-th item of the fit, counted across epochs and restored on resume
        (``batch_progress.total.ready``), is written when ``n`` is a multiple of ``log_every_n_steps``, and so
        is the last. Counting ``batch_idx`` instead restarts every epoch and misses or repeats log rows when
        the epoch length is not a multiple.
        """
        trainer = self.trainer
        every: int = trainer.log_every_n_steps  # type: ignore[attr-defined]  # public, set outside Trainer's class body
        if not every:
            return False
        return trainer.fit_loop.epoch_loop.batch_progress.total.ready % every == 0 or trainer.should_stop

    @override
    def training_step(self, batch: TensorDictBase, batch_idx: int) -> torch.Tensor:
        """One update per ``[B]`` batch: a ``[K, B]`` item (``batches_per_step = K``) makes ``K`` updates."""
        assert self.learner is not None
        optimizer = cast(LightningOptimizer, self.optimizers())
        parts = batch.unbind(0) if batch.batch_dims == 2 else (batch,)
        log_now = self._writes_logs()
        for index, part in enumerate(parts):
            step = self.global_step  # advanced by each optimizer.step()
            total = self._common_step(part, "train", log=log_now and index == len(parts) - 1)
            optimizer.zero_grad()
            self.manual_backward(total)
            optimizer.step()
            self.learner.update_targets(step)
        return total.detach()

    @override
    def configure_optimizers(self) -> torch.optim.Optimizer:
        assert self.learner is not None
        return torch.optim.Adam(self.learner.param_groups)

    @override
    def on_fit_end(self) -> None:
        # ``trainer.log_dir`` is a broadcast: every rank asks for it, outside the rank-0 branch
        folder = self._hp.export_dir or Path(self.trainer.log_dir or ".") / "policy"
        if self.trainer.is_global_zero and self.learner is not None:
            folder = self.export_policy(folder)
            log.info("saved the policy to %s", folder)

    def export_policy(self, folder: str | Path) -> Path:
        """Save the policy folder (weights, spec, goal encoder, algorithm, env); see :func:`save_policy`."""
        return save_policy(
            self.policy,
            folder,
            goal_encoder=self._hp.goal_encoder_id or DEFAULT_GOAL_ENCODER,
            goal_standardization=self.goal_standardization,
            algorithm=self._hp.algorithm,
            env=self._hp.env_name,
            extra={
                "gamma": self._hp.gamma,
                "hyper": resolve_hyper(self._hp.algorithm, self._hp.hyper),
            },
        )
