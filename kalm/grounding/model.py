"""GroundedLM: any causal LM that reads and writes rollouts through a codec (plain ``nn.Module``).

Numeric slots replace token embeddings at their positions (``inputs_embeds``); the backbone's decoder
runs once per batch; the state and action heads read the hidden states one position before each numeric
target, and the LM head runs only where text is predicted. Fine-tuning is LoRA (peft) or full.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kalm.errors import ConfigError
from kalm.backbones import load_backbone, load_tokenizer, write_backbone_terms
from kalm.grounding.batch import GroundingBatch, collate
from kalm.grounding.codec import RolloutCodec
from kalm.grounding.prompts import EncodedExample, PromptEncoder

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

CONFIG_FILE = "kalm_grounding.json"
CODEC_FILE = "codec.safetensors"
FINETUNE_MODES = ("lora", "full")


@dataclass
class GroundingConfig:
    """What defines a grounded LM (saved with it as ``kalm_grounding.json``).

    Args:
        backbone: packaged name (``smollm2-135m``, ``gemma3-270m``, ``tiny-llama``), Hub id or local folder.
        revision: backbone revision (branch, tag or commit) for Hub ids.
        num_layers: keep only the first K transformer blocks (``None`` keeps all).
        finetune: ``lora`` (peft adapters on ``lora_targets``) or ``full``.
        obs_dim, action_dim, discrete: the environment's rollout shapes.
        state_objects: one state token per object, named in state order (``EnvSuite.state_objects``; see
            ``kalm.grounding.codec``); empty for one token per state (models saved before the option).
        object_actions: object-major discrete actions scored against the objects' identities as well.
        object_relations: each object token also embeds the other objects' offsets from it.
        object_action_inputs: an action enters as its object's identity plus its kind's vector (see
            ``kalm.grounding.codec``); ``action_kinds`` names the kinds, in order, for their initial vectors.
        action_kind_scores: each action's logit also adds the hidden state's score against its kind's vector.
        lineage: the grounded models this one was initialised from (``init_from``), nearest first, each
            ``{"repo_id", "revision", "commit"}`` (a local folder's commit is ``local``); the root of the
            chain is ``backbone``. Empty for a model grounded from the backbone itself.
    """

    backbone: str
    obs_dim: int
    action_dim: int
    discrete: bool
    revision: str | None = None
    num_layers: int | None = None
    finetune: str = "lora"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    codec_hidden: int = 256
    residual_states: bool = True
    state_objects: list[str] = field(default_factory=list)
    object_actions: bool = False
    object_relations: bool = False
    object_action_inputs: bool = False
    action_kinds: list[str] = field(default_factory=list)
    action_kind_scores: bool = False
    state_loss_weight: float = 0.5
    action_loss_weight: float = 0.5
    text_loss_weight: float = 1.0
    lineage: list[dict[str, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.finetune not in FINETUNE_MODES:
            raise ConfigError(f"finetune={self.finetune!r} is invalid; expected one of {FINETUNE_MODES}")


@dataclass
class GroundingOutput:
    """Losses of a batch (weighted sum and parts) and per-target values for per-task metrics."""

    loss: Tensor
    state_loss: Tensor
    action_loss: Tensor
    text_loss: Tensor
    state_errors: Tensor
    """Per state target: mean squared error in normalised units."""
    action_errors: Tensor
    """Per action target: cross-entropy (discrete) or normalised MSE (continuous)."""
    action_correct: Tensor
    """Per discrete action target: whether the argmax is right (empty for continuous actions)."""
    text_losses: Tensor
    """Per text target token: cross-entropy."""


class GroundedLM(nn.Module):
    """A causal LM grounded in an environment's rollouts (see the module docstring)."""

    def __init__(
        self,
        config: GroundingConfig,
        *,
        backbone: PreTrainedModel | None = None,
        tokenizer: Any = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = (
            tokenizer if tokenizer is not None else load_tokenizer(config.backbone, revision=config.revision)
        )
        backbone = (
            backbone
            if backbone is not None
            else load_backbone(config.backbone, revision=config.revision, num_layers=config.num_layers)
        )
        codec = build_codec(config, backbone, self.tokenizer)  # before the adapters: the seeded draws' order
        self.backbone: PreTrainedModel | PeftModel = _with_finetuning(backbone, config)
        self.set_codec(codec)

    # -- building blocks -------------------------------------------------------------------------
    def set_codec(self, codec: RolloutCodec) -> None:
        """Use ``codec`` for states and actions, with prompts that give each state its number of tokens."""
        self.codec = codec
        self.prompts = PromptEncoder(self.tokenizer, state_tokens=codec.tokens_per_state)

    @property
    def decoder(self) -> nn.Module:
        base = self.backbone
        if hasattr(base, "peft_config"):  # a PeftModel (peft is imported only for LoRA: no isinstance)
            base = cast("PreTrainedModel", cast("PeftModel", base).get_base_model())
        return base.get_decoder()

    @property
    def lm_head(self) -> nn.Module:
        return self.backbone.get_output_embeddings()

    def collate(self, examples: list[EncodedExample], *, left_pad: bool = False) -> GroundingBatch:
        """Pad encoded examples into a batch for this model."""
        return collate(
            examples,
            pad_id=self.prompts.pad_id,
            obs_dim=self.config.obs_dim,
            discrete=self.config.discrete,
            action_dim=self.config.action_dim,
            left_pad=left_pad,
        )

    def embed(self, batch: GroundingBatch) -> Tensor:
        """Token embeddings with the numeric slots replaced by codec embeddings, ``[B, L, D]``."""
        embeds = self.backbone.get_input_embeddings()(batch.input_ids)
        # both embeddings run even on no slots (an empty selection): see ``forward`` on DDP; under autocast
        # (bf16-mixed) the codec's output is cast to the token embeddings' dtype
        states = self.codec.embed_states(batch.state_inputs).flatten(0, 1).to(embeds.dtype)
        embeds = embeds.index_put((batch.state_input_mask,), states)
        actions = self.codec.embed_actions(batch.action_inputs).to(embeds.dtype)
        return embeds.index_put((batch.action_input_mask,), actions)

    def hidden_states(
        self, embeds: Tensor, attention_mask: Tensor, position_ids: Tensor, **kwargs: Any
    ) -> Any:
        """Run the backbone's decoder (final norm included) on input embeddings."""
        return self.decoder(
            inputs_embeds=embeds, attention_mask=attention_mask, position_ids=position_ids, **kwargs
        )

    # -- training --------------------------------------------------------------------------------
    def forward(self, batch: GroundingBatch) -> GroundingOutput:
        """Losses of a batch. Every codec embedding and head runs on every batch, on an empty selection when
        the batch holds no slot or target of its kind, and such a part enters the loss as a zero that depends
        on the part's weights (``_mean``): every trainable parameter gets a gradient (zero) at every step.
        That is what DDP needs without ``find_unused_parameters`` (which costs a graph traversal per step),
        and a batch without, say, action targets is common (the dynamics and explanation tasks have none)."""
        hidden = self.hidden_states(
            self.embed(batch), batch.attention_mask, batch.position_ids, use_cache=False
        ).last_hidden_state
        predicted_states = self.codec.predict_states(hidden[batch.state_target_mask], batch.state_references)
        target_states = self.codec.normalize_states(batch.state_targets)
        state_errors = (predicted_states - target_states).pow(2).mean(-1)
        action_out = self.codec.action_logits(hidden[batch.action_target_mask])
        if self.config.discrete:
            action_errors = F.cross_entropy(action_out, batch.action_targets, reduction="none")
            action_correct = action_out.argmax(-1) == batch.action_targets
        else:
            action_errors = (action_out - self.codec.normalize_actions(batch.action_targets)).pow(2).mean(-1)
            action_correct = torch.zeros(0, dtype=torch.bool, device=hidden.device)
        text_logits = self.lm_head(hidden[batch.text_target_mask])
        text_losses = F.cross_entropy(text_logits.float(), batch.text_targets, reduction="none")
        state_loss, action_loss, text_loss = _mean(state_errors), _mean(action_errors), _mean(text_losses)
        loss = (
            self.config.state_loss_weight * state_loss
            + self.config.action_loss_weight * action_loss
            + self.config.text_loss_weight * text_loss
        )
        return GroundingOutput(
            loss,
            state_loss,
            action_loss,
            text_loss,
            state_errors.detach(),
            action_errors.detach(),
            action_correct,
            text_losses.detach(),
        )

    # -- generation (implemented in kalm.grounding.generation) -----------------------------------
    def generate_rollouts(self, goals: list[str], initial_states: np.ndarray, **kwargs: Any) -> Any:
        """Imagine rollouts for ``goals`` from ``initial_states``; see ``generation.generate_rollouts``."""
        from kalm.grounding.generation import generate_rollouts

        return generate_rollouts(self, goals, initial_states, **kwargs)

    def explain(self, observations: list[np.ndarray], actions: list[Any], **kwargs: Any) -> list[str]:
        """Describe rollouts as goal text; see ``generation.explain``."""
        from kalm.grounding.generation import explain

        return explain(self, observations, actions, **kwargs)

    # -- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, folder: str | Path) -> Path:
        """Save config, codec (with normalisation stats), tokenizer and the adapter or full weights."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        save_file({k: v.contiguous() for k, v in self.codec.state_dict().items()}, str(folder / CODEC_FILE))
        self.tokenizer.save_pretrained(str(folder / "tokenizer"))
        target = folder / ("adapter" if self.config.finetune == "lora" else "backbone")
        self.backbone.save_pretrained(str(target))
        write_backbone_terms(self.config.backbone, folder)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> GroundedLM:
        """Load a model saved by :meth:`save_pretrained` from a local folder (see ``kalm.grounding.hub``)."""
        from safetensors.torch import load_file
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise ConfigError(f"{folder} is not a grounded model: {CONFIG_FILE} is missing")
        try:
            config = GroundingConfig(
                **{
                    "residual_states": False,  # models saved before the option had absolute heads
                    **json.loads((folder / CONFIG_FILE).read_text()),
                }
            )
        except (TypeError, ValueError) as error:
            raise ConfigError(
                f"{folder / CONFIG_FILE} is not a grounding config this kalm reads: {error}"
            ) from None
        tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        if config.finetune == "full":
            backbone = AutoModelForCausalLM.from_pretrained(str(folder / "backbone"), dtype=torch.float32)
            model = cls(config, backbone=backbone, tokenizer=tokenizer)
        else:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file as load_adapter

            model = cls(config, tokenizer=tokenizer)
            set_peft_model_state_dict(
                model.backbone, load_adapter(str(folder / "adapter" / "adapter_model.safetensors"))
            )
        model.codec.load_state_dict(load_file(str(folder / CODEC_FILE)))
        return model.eval()


def build_codec(
    config: GroundingConfig, backbone: PreTrainedModel | PeftModel, tokenizer: Any
) -> RolloutCodec:
    """A freshly initialised codec for ``config``'s rollout shapes, sized and scaled for ``backbone`` (object
    identities start as the backbone's embeddings of the objects' names, tokenised by ``tokenizer``)."""
    token_rms = token_embedding_rms(backbone)
    return RolloutCodec(
        obs_dim=config.obs_dim,
        action_dim=config.action_dim,
        discrete=config.discrete,
        d_model=backbone.config.hidden_size,
        hidden=config.codec_hidden,
        token_rms=token_rms,
        residual_states=config.residual_states,
        objects=config.state_objects,
        object_actions=config.object_actions,
        object_relations=config.object_relations,
        object_words=name_embeddings(backbone, tokenizer, config.state_objects)
        if config.state_objects
        else None,
        object_action_inputs=config.object_action_inputs,
        action_words=name_embeddings(backbone, tokenizer, config.action_kinds)
        if config.object_action_inputs and config.action_kinds
        else None,
        action_kind_scores=config.action_kind_scores,
    )


@torch.no_grad()
def name_embeddings(backbone: PreTrainedModel | PeftModel, tokenizer: Any, names: list[str]) -> Tensor:
    """``[len(names), d_model]``: the mean input embedding of each name's tokens, said mid-sentence."""
    embeddings = backbone.get_input_embeddings()
    rows = []
    for name in names:
        ids = tokenizer(f" {name}", add_special_tokens=False)["input_ids"]
        rows.append(embeddings(torch.tensor(ids)).float().mean(0))
    return torch.stack(rows)


@torch.no_grad()
def token_embedding_rms(backbone: PreTrainedModel | PeftModel, *, chunk: int = 16384) -> float:
    """RMS vector norm of the token embeddings as they enter the decoder: the embedding module's output over
    the whole vocabulary, so a backbone that scales its embeddings (Gemma: by sqrt(hidden)) is measured
    scaled."""
    embeddings = backbone.get_input_embeddings()
    vocab = embeddings.get_parameter("weight").shape[0]
    total = sum(
        float(embeddings(torch.arange(start, min(start + chunk, vocab))).pow(2).sum())
        for start in range(0, vocab, chunk)
    )
    return (total / vocab) ** 0.5


def _with_finetuning(backbone: PreTrainedModel, config: GroundingConfig) -> PreTrainedModel | PeftModel:
    if config.finetune == "full":
        return backbone
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(backbone, lora)


def _mean(values: Tensor) -> Tensor:
    """The mean; of no values, a zero still connected to the weights that produced them (see ``forward``)."""
    return values.mean() if values.numel() else values.sum()
