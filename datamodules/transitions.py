"""TransitionDataModule: real + imaginary rollout datasets -> mixed batches of goal-conditioned transitions.

Inputs are :class:`DatasetSource` s: a local dataset folder (``kalm collect --out``) or a Hub dataset
repo id at a revision (pulled with :func:`kalm.hub.datasets.pull_dataset`, pinned to a commit). Rows
are pooled by their ``source`` column (a pre-merged dataset works too); ``imaginary_levels`` keeps
only the imaginary rollouts of some levels (the paper trains one policy per level).

Setup builds the transitions once with vectorised numpy (:mod:`kalm.data.transitions`), encodes each distinct
instruction once with the frozen goal encoder (cached on disk), and keeps the real and the imaginary pools
apart; every batch then holds ``round(batch_size * real_fraction)`` real transitions (1:1 by default, the
paper's setting) and the rest imaginary ones, every imaginary transition equally likely or (``imaginary_mix:
levels``) every level the same share. See :mod:`datamodules.mixing` for the batch keys. Under DDP each
rank draws its own batches (its sampler is seeded by ``seed`` and its rank; rank 0 draws what one process
draws), so a step of ``n`` processes averages gradients over ``n * batch_size`` transitions: ``batch_size`` is
per process, as in Lightning. The goal embedding is concatenated to the state in ``observation``, so every
TorchRL loss and network sees one input vector ``[s || g]`` as in the paper (reference §6.1).

Example:
    >>> dm = TransitionDataModule(real="runs/clevr-real", batch_size=100)  # doctest: +SKIP
    >>> dm.setup("fit"); next(iter(dm.train_dataloader()))["observation"].shape  # doctest: +SKIP
    torch.Size([100, 394])
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any, Literal, get_args

import lightning as L
import numpy as np
from typing_extensions import override

from datamodules.mixing import (
    IMAGINARY_MIXES,
    ImaginaryMix,
    MixedBatches,
    TransitionPool,
    seed_from,
    split_counts,
)
from datamodules.sources import DatasetSource, LoadedSource, as_source, load_source
from kalm.data import RolloutSpec
from kalm.data.transitions import TransitionArrays, concatenate, episodes_to_transitions
from kalm.envs.goals import check_level
from kalm.errors import ConfigError, DatasetSchemaError
from kalm.rl.dynamics import DynamicsConfig, DynamicsEnsemble, confirmed
from kalm.rl.goal_encoder import (
    DEFAULT_GOAL_ENCODER,
    GoalEncoder,
    GoalStandardization,
    is_causal_lm_encoder,
)

log = logging.getLogger(__name__)

ImaginaryCheck = Literal["none", "dynamics"]
"""Which imaginary rollouts are trusted: every label of the judge, or those learned dynamics reproduce."""
IMAGINARY_CHECKS: tuple[str, ...] = get_args(ImaginaryCheck)


class TransitionDataModule(L.LightningDataModule):
    """Real + imaginary rollouts as mixed TorchRL transition batches (see the module docstring).

    Args:
        real: the real rollout dataset.
        imaginary: zero or more imaginary rollout datasets.
        imaginary_levels: keep only imaginary rollouts of these levels (all when ``None``).
        imaginary_successful_only: keep only imaginary rollouts that reach their goal by the judge's labels
            (filtered behaviour cloning; the paper keeps them all).
        imaginary_mix: how the imaginary rows of a batch are drawn: ``transitions``, every imaginary
            transition equally likely; ``levels``, each level's rollouts the same share of them, whatever
            their lengths and counts (:mod:`datamodules.mixing`).
        imaginary_check: ``dynamics``: keep only imaginary rollouts whose label a dynamics ensemble fitted to
            the real transitions reproduces (:mod:`kalm.rl.dynamics`; seeded by ``seed``); ``none`` (default):
            trust the judge's labels on the imagined states.
        dynamics: the ensemble's size and fitting for ``imaginary_check: dynamics`` (default
            :class:`~kalm.rl.dynamics.DynamicsConfig`).
        real_fraction: fraction of each batch drawn from real transitions (0.5 = the paper's 1:1).
        batch_size: transitions per batch.
        steps_per_epoch: dataloader items per training epoch.
        batches_per_step: batches stacked in one dataloader item (``[K, B]``); the module makes one
            update per batch, so the trainer's per-item overhead is shared by ``K`` updates.
        goal_encoder: the frozen goal encoder: a sentence-transformers model id or folder, or a causal LM
            read at a layer, ``BACKBONE:layerK`` (``kalm.rl.goal_encoder``).
        goal_standardize: standardize every goal-embedding dimension with the mean and standard deviation
            over the real data's distinct sentences (kept with the policy); ``auto``: for causal-LM encoders.
        embedding_cache: on-disk goal-embedding cache folder (default ``~/.cache/kalm/goal_embeddings``).
        hub_endpoint: Hub URL for repo inputs (default: kalm's endpoint resolution, a local server).
        seed: seed of the batch sampler.
    """

    def __init__(
        self,
        *,
        real: DatasetSource | str,
        imaginary: list[DatasetSource | str] | None = None,
        imaginary_levels: list[str] | None = None,
        imaginary_successful_only: bool = False,
        imaginary_mix: ImaginaryMix = "transitions",
        imaginary_check: ImaginaryCheck = "none",
        dynamics: DynamicsConfig | None = None,
        real_fraction: float = 0.5,
        batch_size: int = 256,
        steps_per_epoch: int = 1000,
        batches_per_step: int = 1,
        goal_encoder: str = DEFAULT_GOAL_ENCODER,
        goal_standardize: bool | Literal["auto"] = "auto",
        embedding_cache: str | None = None,
        hub_endpoint: str | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.real = as_source(real)
        self.imaginary = [as_source(item) for item in imaginary or []]
        self.imaginary_levels = (
            tuple(check_level(level) for level in imaginary_levels) if imaginary_levels else None
        )
        if imaginary_mix not in IMAGINARY_MIXES:
            raise ConfigError(
                f"imaginary_mix={imaginary_mix!r} is invalid; expected one of {IMAGINARY_MIXES}"
            )
        self.imaginary_mix = imaginary_mix
        if imaginary_check not in IMAGINARY_CHECKS:
            raise ConfigError(
                f"imaginary_check={imaginary_check!r} is invalid; expected one of {IMAGINARY_CHECKS}"
            )
        self.imaginary_check = imaginary_check
        # ``kalm run`` hands its sections over as plain mappings
        config = dynamics if isinstance(dynamics, DynamicsConfig) else DynamicsConfig(**(dynamics or {}))
        self.dynamics = config
        split_counts(batch_size, real_fraction, has_imaginary=True)  # validates both
        for name, value in (("steps_per_epoch", steps_per_epoch), ("batches_per_step", batches_per_step)):
            if value < 1:
                raise ConfigError(f"{name}={value!r} is invalid; expected a positive integer")
        self.batches_per_step = batches_per_step
        self.real_fraction = real_fraction
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.encoder = GoalEncoder(goal_encoder, cache_dir=embedding_cache)
        if goal_standardize not in (True, False, "auto"):
            raise ConfigError(
                f"goal_standardize={goal_standardize!r} is invalid; expected true, false or auto"
            )
        self.goal_standardize = (
            is_causal_lm_encoder(goal_encoder) if goal_standardize == "auto" else bool(goal_standardize)
        )
        self.hub_endpoint = hub_endpoint
        self.seed = seed
        self.spec: RolloutSpec | None = None
        self.env: str | None = None
        self.pools: dict[str, TransitionPool | None] = {}
        self.check_stats: dict[str, dict[str, int]] = {}
        """``imaginary_check: dynamics``: per imagined level, the rollouts labelled successful and
        unsuccessful, and how many of each the check confirmed."""
        self.checked: list[Any] = []
        """``imaginary_check: dynamics``: the imaginary datasets as the check left them."""
        self.inputs: list[dict[str, Any]] = []
        self._sampler_state: dict[str, Any] | None = None
        self._stream: MixedBatches | None = None

    @override
    def setup(self, stage: str | None = None) -> None:
        if self.spec is not None:
            return
        loaded = [load_source(self.real, hub_endpoint=self.hub_endpoint)]
        loaded += [load_source(source, hub_endpoint=self.hub_endpoint) for source in self.imaginary]
        self.spec, self.env = _common_spec(loaded)
        real = episodes_to_transitions(loaded[0].dataset, self.spec, where=loaded[0].source.repo_or_path)
        imaginary = [item.dataset for item in loaded[1:]]
        if self.imaginary_check == "dynamics" and imaginary:
            imaginary = self._checked(real, imaginary)
        parts = [real] + [
            episodes_to_transitions(
                dataset,
                self.spec,
                where=item.source.repo_or_path,
                levels=self.imaginary_levels,
                successful_only=self.hparams["imaginary_successful_only"],
            )
            for dataset, item in zip(imaginary, loaded[1:], strict=True)
        ]
        self.inputs = [item.provenance() for item in loaded]
        self.build_pools(concatenate(parts))

    def _checked(self, real: TransitionArrays, imaginary: list[Any]) -> list[Any]:
        """``imaginary`` without the rollouts whose label a dynamics ensemble fitted to ``real`` does not
        reproduce (``imaginary_check: dynamics``)."""
        from kalm.envs import get_suite

        assert self.spec is not None and self.env is not None
        suite = get_suite(self.env)
        ensemble = DynamicsEnsemble(
            self.spec.obs_dim,
            self.spec.action_dim,
            discrete=self.spec.discrete,
            config=self.dynamics,
            seed=self.seed,
        )
        fitted_on = real.select(real.source == 0)  # a pre-merged real dataset may hold imaginary rows too
        losses = ensemble.fit(fitted_on, seed=self.seed)
        checked: list[Any] = []
        stats: dict[str, Counter[str]] = {}
        for dataset in imaginary:
            verdicts = confirmed(ensemble, suite, dataset.with_format("numpy"))
            labels = zip(dataset["level"], dataset["success"], strict=True)
            for (level, success), verdict in zip(labels, verdicts, strict=True):
                label = "successful" if success else "unsuccessful"
                counts = stats.setdefault(str(level), Counter())
                counts[f"labelled {label}"] += 1
                counts[f"confirmed {label}"] += int(verdict)
            checked.append(dataset.select(np.flatnonzero(verdicts)))
        if not any(len(part) for part in checked):
            raise DatasetSchemaError(
                f"the dynamics check confirmed none of the {sum(len(part) for part in imaginary)} "
                "imaginary rollouts; expected some whose labels the real data's dynamics reproduce "
                "(imaginary_check: none trusts them all)"
            )
        self.check_stats = {level: dict(sorted(counts.items())) for level, counts in sorted(stats.items())}
        self.checked = checked
        log.info(
            "dynamics check (an ensemble of %d fitted to %d real transitions, final loss %.4f): confirmed %s",
            ensemble.config.members,
            len(fitted_on),
            losses[-1],
            "; ".join(
                f"{level} {c['confirmed successful']} of {c['labelled successful']} labelled successful, "
                f"{c['confirmed unsuccessful']} of {c['labelled unsuccessful']} unsuccessful"
                for level, c in stats.items()
            ),
        )
        return checked

    def build_pools(self, arrays: TransitionArrays) -> None:
        """Encode the sentences of ``arrays`` and split them into the real and imaginary pools."""
        assert self.spec is not None
        imaginary = arrays.source.astype(bool)
        embeddings = self.encoder.standardized(None).encode(list(arrays.sentences))
        if self.goal_standardize:  # the real data's sentences, each once: the same for KALM and the baseline
            standardization = GoalStandardization.fit(embeddings[np.unique(arrays.sentence[~imaginary])])
            self.encoder = self.encoder.standardized(standardization)
            embeddings = standardization.apply(embeddings)
        self.pools = {
            "real": TransitionPool(arrays.select(~imaginary), embeddings, discrete=self.spec.discrete),
            "imaginary": TransitionPool(
                arrays.select(imaginary),
                embeddings,
                discrete=self.spec.discrete,
                by_level=self.imaginary_mix == "levels",
            )
            if imaginary.any()
            else None,
        }
        per_level = np.bincount(arrays.level[imaginary], minlength=len(arrays.levels))
        counts = ", ".join(f"{name} {n}" for name, n in zip(arrays.levels, per_level, strict=True) if n)
        mix = "every level the same share" if self.imaginary_mix == "levels" else "every transition alike"
        log.info(
            "transitions: %d real, %d imaginary%s, %d distinct goal sentences",
            int((~imaginary).sum()),
            int(imaginary.sum()),
            f" ({counts}; drawn {mix})" if imaginary.any() else "",
            len(arrays.sentences),
        )
        real = self.pools["real"]
        if real is None or not len(real):
            raise DatasetSchemaError(f"{self.real.repo_or_path}: no rollouts with source 'real'")

    @property
    def goal_dim(self) -> int:
        """Length of the goal embedding appended to each state."""
        return self.encoder.dim

    @override
    def train_dataloader(self) -> MixedBatches:
        """The batch stream itself, not wrapped in a ``DataLoader``.

        Its items are whole batches, so a loader without workers or collation would only add its per-item
        cost to every training step. Lightning also keeps the stream's sampler state in its loop state (the
        same state as :meth:`state_dict`).
        """
        real = self.pools.get("real")
        if real is None:
            raise ConfigError("call setup() before train_dataloader()")
        rank = self.trainer.global_rank if self.trainer is not None else 0  # DDP ranks draw different batches
        self._stream = MixedBatches(
            real,
            self.pools["imaginary"],
            batch_size=self.batch_size,
            real_fraction=self.real_fraction,
            steps=self.steps_per_epoch,
            seed=seed_from(self.seed, rank),
            batches_per_step=self.batches_per_step,
        )
        if self._sampler_state is not None:
            self._stream.load_state_dict(self._sampler_state)
        return self._stream

    @override
    def state_dict(self) -> dict[str, Any]:
        return self._stream.state_dict() if self._stream is not None else {}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._sampler_state = dict(state_dict) or None


def _common_spec(loaded: list[LoadedSource]) -> tuple[RolloutSpec, str]:
    first = loaded[0]
    spec, env = RolloutSpec.from_dict(first.info["rollout_spec"]), str(first.info.get("env"))
    for item in loaded[1:]:
        other = RolloutSpec.from_dict(item.info["rollout_spec"])
        if other != spec or item.info.get("env") != env:
            raise DatasetSchemaError(
                f"{item.source.repo_or_path}: env {item.info.get('env')!r} with {other} does not match the "
                f"real "
                f"dataset's env {env!r} with {spec}"
            )
    return spec, env


__all__ = ["DatasetSource", "TransitionDataModule", "load_source"]
