"""GroundingModule: the Lightning training glue around ``GroundedLM`` (losses, metrics, optimiser).

Validation logs the losses per task and, every ``metrics_every`` validations, the paper's metrics and the
diagnostics beside them (``kalm.grounding.metrics``): strict explanation accuracy per slot on held-out
episodes that reached their goal, free-running action agreement, and the match rate per level. With LoRA,
checkpoints hold only the trainable weights (adapters, codec) and the codec's buffers, not the frozen
backbone, which is reloaded from its reference. With ``init_from`` the model starts from a grounded model
(``kalm.grounding.parent``).
"""

from __future__ import annotations

import math
from typing import Any, Literal, cast

import lightning as L
import torch
from lightning.fabric.utilities.data import AttributeDict
from typing_extensions import override

from kalm.envs import NOVEL_LEVELS, get_suite
from kalm.errors import ConfigError
from kalm.grounding.batch import GroundingBatch
from kalm.grounding.contracts import GroundingData, grounding_data
from kalm.grounding.metrics import (
    action_agreement,
    explanation_cases,
    explanation_metrics,
    explanation_reliance,
    match_rate,
)
from kalm.grounding.model import GroundedLM, GroundingConfig, GroundingOutput
from kalm.grounding.prompts import TASK_NAMES, Task

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""LoRA adapters on every attention and MLP projection of a Llama-style block (SmolLM2, Gemma 3)."""


LR_FLOOR = 0.1
"""The cosine decay ends at this fraction of the peak learning rate."""


def lr_schedule(
    optimizer: torch.optim.Optimizer, *, warmup: int, total: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``LR_FLOOR`` of the peak at step ``total``
    (transformers' ``get_cosine_with_min_lr_schedule_with_warmup``; the factor at step ``s < warmup`` is
    ``s / warmup``)."""
    from transformers import get_cosine_with_min_lr_schedule_with_warmup

    return get_cosine_with_min_lr_schedule_with_warmup(
        optimizer, num_warmup_steps=warmup, num_training_steps=total, min_lr_rate=LR_FLOOR
    )


class GroundingModule(L.LightningModule):
    """Fine-tunes a causal LM on the four grounding tasks.

    Args:
        backbone: packaged name (``smollm2-135m``, ``tiny-llama``), Hub id or local folder.
        revision: backbone revision.
        num_layers: keep only the first K transformer blocks (``None``: all; ``kalm run`` keeps 8 on a CPU).
        finetune: ``lora`` or ``full``.
        lora_rank, lora_alpha, lora_targets: LoRA settings (default: every attention and MLP projection).
        env: the environment (rollout shapes, judges for the metrics).
        codec_hidden: width of the codec MLPs.
        residual_states: the state head predicts the change from the latest state in context (see
            ``kalm.grounding.codec``); ``False`` predicts absolute states as the reference does.
        object_tokens: a state enters as one token per object of the environment (``EnvSuite.state_objects``,
            e.g. CLEVR-Robot's five balls), each told apart by its name's embedding; ``False``: one token per
            state, as the reference does; ``"auto"`` (``kalm run``'s default): on where the environment
            declares objects.
        object_actions: with ``object_tokens``, on an environment with object-major actions
            (``EnvSuite.object_major_actions``), score each object's actions against its identity as well (see
            ``kalm.grounding.codec``); ``"auto"``: wherever the state has object tokens and the actions are
            object-major.
        object_relations: with ``object_tokens``, each object's token also embeds every object's offset from
            it (a relation between two objects is then in one token); ``"auto"``: wherever the state has
            object tokens.
        object_action_inputs: with ``object_actions``, an action enters as its object's identity plus a vector
            for its kind shared by every object, started from the embedding of the kind's name
            (``EnvSuite.object_action_names``; see ``kalm.grounding.codec``); ``"auto"``: wherever
            ``object_actions`` is on.
        action_kind_scores: with ``object_action_inputs``, each action's logit also adds the hidden state's
            score against its kind's vector, at first the LM's logit for the kind's name; ``"auto"``: wherever
            ``object_action_inputs`` is on.
        state_loss_weight, action_loss_weight, text_loss_weight: loss weights (reference: 0.5/0.5/1.0).
        lr, weight_decay, warmup_steps: AdamW with linear warm-up, then cosine decay to 10 %.
        codec_lr: learning rate of the codec (embeddings and heads, trained from scratch; default ``lr``).
        metrics_every: compute explanation accuracy and match rates every N validations (0: never).
        explain_episodes: held-out episodes used for explanation accuracy.
        match_goals: goals per level for the match rate.
        match_levels: levels whose match rate is measured.
        match_horizon: decoding horizon for the match rate (default: the environment's).
        init_from: start from this grounded model (``REPO[@REV]`` or a folder written by kalm) instead of the
            raw backbone: its backbone (which ``backbone``/``revision`` must name), fine-tuned weights and
            their settings, and its codec when this environment's rollout shapes are the parent's (see
            ``kalm.grounding.parent``).
    """

    def __init__(
        self,
        *,
        backbone: str = "smollm2-135m",
        revision: str | None = None,
        num_layers: int | None = None,
        finetune: str = "lora",
        lora_rank: int = 32,
        lora_alpha: int = 64,
        lora_targets: tuple[str, ...] = LORA_TARGETS,
        env: str = "clevr",
        codec_hidden: int = 256,
        residual_states: bool = True,
        object_tokens: bool | Literal["auto"] = False,
        object_actions: bool | Literal["auto"] = False,
        object_relations: bool | Literal["auto"] = False,
        object_action_inputs: bool | Literal["auto"] = False,
        action_kind_scores: bool | Literal["auto"] = False,
        state_loss_weight: float = 0.5,
        action_loss_weight: float = 0.5,
        text_loss_weight: float = 1.0,
        lr: float = 1e-3,
        codec_lr: float | None = 3e-3,
        weight_decay: float = 0.0,
        warmup_steps: int = 20,
        metrics_every: int = 1,
        explain_episodes: int = 64,
        match_goals: int = 32,
        match_levels: list[str] | None = None,
        match_horizon: int | None = None,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.suite = get_suite(env)
        spec = self.suite.spec
        layout = self.suite.state_layout(object_tokens)
        if object_actions == "auto":
            object_actions = bool(layout) and self.suite.object_major_actions
        elif object_actions and not (layout and self.suite.object_major_actions):
            raise ConfigError(
                "object_actions=True needs object_tokens=True and an environment whose actions are "
                "object-major; "
                f"{env!r} {'has' if self.suite.object_major_actions else 'has no'} object-major actions "
                f"(EnvSuite.object_major_actions) and object_tokens is {object_tokens}"
            )
        if object_relations == "auto":
            object_relations = bool(layout)
        elif object_relations and not layout:
            raise ConfigError(
                f"object_relations=True needs object tokens; {env!r} reads a state as one token "
                f"(object_tokens={object_tokens})"
            )
        if object_action_inputs == "auto":
            object_action_inputs = object_actions
        elif object_action_inputs and not object_actions:
            raise ConfigError(
                f"object_action_inputs=True needs object_actions; it is off for {env!r} "
                f"(object_tokens={object_tokens}, object_actions={object_actions})"
            )
        if action_kind_scores == "auto":
            action_kind_scores = object_action_inputs
        elif action_kind_scores and not object_action_inputs:
            raise ConfigError(
                f"action_kind_scores=True needs object_action_inputs; it is off for {env!r} "
                f"(object_action_inputs={object_action_inputs})"
            )
        config = GroundingConfig(
            backbone=backbone,
            revision=revision,
            num_layers=num_layers,
            finetune=finetune,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            lora_targets=list(lora_targets),
            obs_dim=spec.obs_dim,
            action_dim=spec.action_dim,
            discrete=spec.discrete,
            codec_hidden=codec_hidden,
            residual_states=residual_states,
            state_objects=list(layout),
            object_actions=object_actions,
            object_relations=object_relations,
            object_action_inputs=object_action_inputs,
            action_kinds=list(self.suite.object_action_names) if object_action_inputs else [],
            action_kind_scores=action_kind_scores,
            state_loss_weight=state_loss_weight,
            action_loss_weight=action_loss_weight,
            text_loss_weight=text_loss_weight,
        )
        self.codec_kept = False
        if init_from:
            from kalm.grounding.parent import init_from_parent

            initialised = init_from_parent(init_from, config)
            self.model, self.codec_kept = initialised.model, initialised.codec_kept
        else:
            self.model = GroundedLM(config).train()  # from_pretrained leaves the backbone in eval mode
        self.strict_loading = False  # LoRA checkpoints leave the frozen backbone out
        self._validations = 0

    @property
    def _hp(self) -> AttributeDict:
        """The hyperparameters with attribute access (``save_hyperparameters`` keeps an ``AttributeDict``)."""
        return cast(AttributeDict, self.hparams)

    @override
    def setup(self, stage: str) -> None:
        data = self._data()
        tokens = self.model.codec.tokens_per_state
        if data is not None and data.state_tokens != tokens:
            codec = " (the parent's codec)" if self.codec_kept else ""
            raise ConfigError(
                f"the datamodule gives each state {data.state_tokens} position(s); this model reads a state "
                f"as {tokens} token(s){codec}: set data.object_tokens to {str(tokens > 1).lower()}"
            )
        if data is not None and not self.codec_kept:
            self.model.codec.set_normalization(**data.state_stats())

    @override
    def forward(self, batch: GroundingBatch) -> GroundingOutput:
        return self.model(batch)

    @override
    def training_step(self, batch: GroundingBatch, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "train")

    @override
    def validation_step(self, batch: GroundingBatch, batch_idx: int) -> torch.Tensor:
        return self._common_step(batch, "val")

    def _common_step(self, batch: GroundingBatch, stage: str) -> torch.Tensor:
        output = self.model(batch)
        size = len(batch)
        self.log(f"{stage}/loss", output.loss, prog_bar=True, batch_size=size)
        for name, value, targets in (
            ("state_mse", output.state_loss, output.state_errors),
            ("action_loss", output.action_loss, output.action_errors),
            ("text_loss", output.text_loss, output.text_losses),
        ):
            if targets.numel():  # a batch may hold no target of a kind: logging 0 would bias the mean
                self.log(f"{stage}/{name}", value, batch_size=targets.numel())
        if output.action_correct.numel():
            self.log(
                f"{stage}/action_acc",
                output.action_correct.float().mean(),
                prog_bar=stage == "val",
                batch_size=size,
            )
        if stage == "val":
            self._log_per_task(batch, output)
        return output.loss

    def _log_per_task(self, batch: GroundingBatch, output: GroundingOutput) -> None:
        parts = {
            "state_mse": (batch.state_target_mask, output.state_errors),
            "action_loss": (batch.action_target_mask, output.action_errors),
            "text_loss": (batch.text_target_mask, output.text_losses),
        }
        for metric, (mask, values) in parts.items():
            tasks = batch.task[mask.nonzero()[:, 0]]
            for task in Task:
                selected = values[tasks == task]
                if selected.numel():
                    self.log(f"val/{TASK_NAMES[task]}/{metric}", selected.mean(), batch_size=selected.numel())

    @override
    def on_validation_epoch_end(self) -> None:
        self._validations += 1
        every = self._hp.metrics_every
        if self.trainer.sanity_checking or not every or self._validations % every:
            return
        strategy = self.trainer.strategy  # rank 0 measures (greedy decoding), every rank logs the same values
        metrics = self.paper_metrics() if self.trainer.is_global_zero else {}
        for name, value in strategy.broadcast(metrics).items():
            self.log(f"val/{name}", value)

    def paper_metrics(self) -> dict[str, float]:
        """Explanation accuracy on held-out episodes that reached their goal, free-running action agreement
        with the behaviour policy, and the match rate per level (greedy decoding); see
        ``kalm.grounding.metrics``."""
        metrics: dict[str, float] = {}
        data = self._data()
        was_training = self.model.training
        self.model.eval()
        if data is not None and self._hp.explain_episodes:
            episodes = explanation_cases(data.episodes(validation=True), self._hp.explain_episodes)
            metrics.update(explanation_metrics(self.model, self.suite, episodes))
            metrics.update(explanation_reliance(self.model, self.suite, episodes))
        levels = self._hp.match_levels or ["train", *NOVEL_LEVELS]
        for level in levels:
            metrics.update(
                action_agreement(self.model, self.suite, level, count=max(self._hp.match_goals, 64))
            )
            metrics[f"match_rate/{level}"] = match_rate(
                self.model,
                self.suite,
                level,
                count=self._hp.match_goals,
                horizon=self._hp.match_horizon,
            )
        self.model.train(was_training)
        return metrics

    def _data(self) -> GroundingData | None:
        """The trainer's datamodule when it is a source of grounding episodes
        (``kalm.grounding.contracts``)."""
        return grounding_data(
            getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        )

    def full_model(self) -> GroundedLM:
        """The grounded LM with all its weights on rank 0, e.g. to publish it after ``fit``.

        Call it on every rank: under a strategy that shards the weights (FSDP, DeepSpeed) gathering them is a
        collective, and rank 0 loads the full state dict into a fresh model; under DDP (or one device) every
        rank already holds the whole model, which is returned as it is.
        """
        from lightning.pytorch.strategies import Strategy

        strategy = self.trainer.strategy
        if type(strategy).lightning_module_state_dict is Strategy.lightning_module_state_dict:
            return self.model
        state = strategy.lightning_module_state_dict()
        if not self.trainer.is_global_zero:
            return self.model
        model = GroundedLM(self.model.config)
        model.load_state_dict({key.removeprefix("model."): value for key, value in state.items()})
        return model

    @override
    def configure_optimizers(self) -> Any:
        codec = [p for p in self.model.codec.parameters() if p.requires_grad]
        codec_ids = {id(p) for p in codec}
        backbone = [p for p in self.parameters() if p.requires_grad and id(p) not in codec_ids]
        groups = [
            {"params": backbone, "lr": self._hp.lr},
            {"params": codec, "lr": self._hp.codec_lr or self._hp.lr},
        ]
        optimizer = torch.optim.AdamW(groups, weight_decay=self._hp.weight_decay)
        total = self._total_steps()
        scheduler = lr_schedule(optimizer, warmup=min(self._hp.warmup_steps, total), total=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _total_steps(self) -> int:
        if self._trainer is None:
            return 1
        estimated = self.trainer.estimated_stepping_batches  # infinite for streamed data without max_steps
        return max(1, int(estimated) if math.isfinite(estimated) else int(self.trainer.max_steps))

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.model.config.finetune != "lora":  # init_from: the parent's mode, whatever was configured
            return
        frozen = {f"{name}" for name, parameter in self.named_parameters() if not parameter.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k not in frozen}
