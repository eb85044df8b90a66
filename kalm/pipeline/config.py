"""The configuration of a whole KALM run (``kalm run --config configs/run/<preset>.yaml``).

Each stage's section is built from the very classes and functions its own command takes, so a key means one
thing with one default everywhere, and a stage config pastes into a run preset:

- ``collect``: ``kalm collect``'s arguments;
- ``ground``: ``kalm ground``'s ``model`` (:class:`~kalm.grounding.module.GroundingModule`), ``data``
  (:class:`~datamodules.rollout_goal.RolloutGoalDataModule`) and ``trainer`` (``lightning.Trainer``) sections;
- ``imagine``: :class:`~kalm.imagine.settings.ImagineSettings`, what ``kalm imagine`` decodes;
- ``learn``: ``kalm learn``'s ``model`` (:class:`~kalm.rl.module.OfflineRLModule`), ``data``
  (:class:`~datamodules.transitions.TransitionDataModule`) and ``trainer`` sections;
- ``evaluate``: the run's evaluation protocol.

What the run wires itself is left out of the sections: the environment, the seed and the datasets a stage
reads (the previous stage's output), the run folder, its loggers and checkpoints, and the device placement,
which the run-level ``trainer`` section sets for every Lightning stage. A stage that names an existing
artefact (``collect.pull``, ``ground.pull``: ``REPO[@REV]``) pulls it instead of producing it. Keys renamed
since the flat sections of 0.1 fail with a one-line error naming the new key (:data:`RENAMED`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kalm.errors import ConfigError
from kalm.imagine.settings import ImagineSettings

if TYPE_CHECKING:
    from jsonargparse import ArgumentParser

LINKED = {
    "ground.model": ("env",),
    "ground.data": ("dataset", "revision", "env", "backbone", "object_tokens", "seed"),
    "learn.model": (
        "obs_dim",
        "goal_dim",
        "action_dim",
        "discrete",
        "goal_encoder_id",
        "env_name",
        "export_dir",
    ),
    "learn.data": ("real", "imaginary", "imaginary_levels", "hub_endpoint", "seed"),
}
"""Arguments the run links from its own settings or the previous stage (``ground.data.backbone`` is
``ground.model``'s, ``object_tokens`` the built model's state layout, a parent's with ``init_from``; the
learners' shapes come from the data)."""

RUN_DEFAULTS = {
    # the CPU budget: the first 8 of SmolLM2's 30 layers (GroundingModule keeps them all by default)
    "ground.model.num_layers": 8,
    # measured on CLEVR (README, "What each setting bought"): one token per ball, whose identity also scores
    # its actions and which embeds the other balls' offsets, on every environment that declares named objects
    # (EnvSuite.state_objects); one token per state elsewhere
    "ground.model.object_tokens": "auto",
    "ground.model.object_actions": "auto",
    "ground.model.object_relations": "auto",
    # measured on CLEVR (README): a quarter of each batch imaginary, only the rollouts judged successful,
    # every imagined level the same share of those rows, and 4 updates per dataloader item
    # (TransitionDataModule's defaults are the paper's 1:1 of every rollout drawn uniformly, 1 update)
    "learn.data.real_fraction": 0.75,
    "learn.data.imaginary_successful_only": True,
    "learn.data.imaginary_mix": "levels",
    "learn.data.batches_per_step": 4,
    # streamed data has no length: validate every N steps across epochs, not at epoch ends
    **{
        f"ground.trainer.{key}": value
        for key, value in {
            "max_steps": 800,
            "val_check_interval": 400,
            "check_val_every_n_epoch": None,
            "limit_val_batches": 10,
            "log_every_n_steps": 20,
            "num_sanity_val_steps": 0,
        }.items()
    },
    **{
        f"learn.trainer.{key}": value
        for key, value in {
            "max_steps": 3000,
            "log_every_n_steps": 50,
            "limit_val_batches": 0,
            "num_sanity_val_steps": 0,
        }.items()
    },
}
"""The only places where ``kalm run``'s defaults differ from its stages' classes: the CPU default's layer
budget, its state layout, its measured data mix, and the Lightning stages' schedules (``lightning.Trainer``
has no defaults for them)."""

_MOVED: dict[str, dict[str, tuple[str, ...]]] = {
    "ground": {
        "model": (
            "backbone",
            "num_layers",
            "finetune",
            "lora_rank",
            "lora_alpha",
            "lora_targets",
            "residual_states",
            "lr",
            "codec_lr",
            "explain_episodes",
            "match_goals",
            "init_from",
        ),
        "data": ("batch_size", "tasks_per_episode", "task_weights", "explanation_phrasing", "max_episodes"),
        "trainer": ("max_steps", "val_check_interval"),
    },
    "learn": {
        "model": ("algorithm", "gamma", "hyper"),
        "data": ("batch_size", "batches_per_step", "imaginary_successful_only"),
    },
}
RENAMED = {
    "collect.dataset": "collect.pull",
    "learn.steps": "learn.trainer.max_steps",
    "learn.imaginary_ratio": "learn.data.real_fraction (the real share of a batch: 1 - imaginary_ratio)",
    **{
        f"{stage}.{key}": f"{stage}.{section}.{key}"
        for stage, sections in _MOVED.items()
        for section, keys in sections.items()
        for key in keys
    },
}
"""Keys of the flat run sections (kalm 0.1) and where each one went."""


@dataclass
class TrainerConfig:
    """Where the Lightning stages run (grounding, imagination, offline RL); scale out with these.

    ``devices``/``num_nodes`` > 1 shard grounding and RL with ``strategy`` (``ddp``, ``fsdp``, ...) and
    imagination batches through ``Trainer.predict``; multi-node runs are launched by ``torchrun`` or SLURM.
    """

    accelerator: str = "auto"
    devices: int = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"


RUN_OWNED_TRAINER = (
    *(placement.name for placement in fields(TrainerConfig)),
    "default_root_dir",
    "logger",
    "callbacks",
    "enable_checkpointing",
    "plugins",
)
"""Trainer arguments the run sets itself (the placement, from its ``trainer`` section; the run folder, its
CSV logs and resumable checkpoints); a stage's ``trainer`` section takes every other ``lightning.Trainer``
argument."""


@dataclass
class CollectConfig:
    """Real data: ``kalm collect``'s arguments, or ``pull`` a published dataset (``REPO[@REV]``) instead."""

    episodes: int
    noise: float
    random_fraction: float
    hindsight: int = 0
    pull: str | None = None


@dataclass
class GroundConfig:
    """Grounding: ``kalm ground fit``'s ``model``, ``data`` and ``trainer`` sections, or ``pull`` a grounded
    model (``REPO[@REV]``) instead.

    ``model.init_from`` (``REPO[@REV]`` or a folder) grounds further from a grounded model instead of from the
    raw backbone (same command for a new environment and for more data of the same one); the model is
    published as ``<org>/kalm-<env>-grounded-<backbone>-from-<parent env>``.

    ``stall_check`` abandons a grounding whose validation action loss is still at chance
    (``kalm.grounding.health``) and grounds again under a new seed, at most ``restarts`` times.
    """

    model: dict[str, Any]
    data: dict[str, Any]
    trainer: dict[str, Any]
    pull: str | None = None
    stall_check: bool = True
    restarts: int = 1

    def __post_init__(self) -> None:
        if self.restarts < 0:
            raise ConfigError(
                f"ground.restarts must be 0 or more (groundings after a stalled one); got {self.restarts}"
            )


@dataclass
class LearnConfig:
    """Offline RL: ``kalm learn fit``'s ``model``, ``data`` and ``trainer`` sections, the same for the
    baseline and the KALM policy (the baseline reads no imaginary data).

    ``num_seeds`` policies are trained per side (seeds ``seed``, ``seed + 1``, ...); seed ``s`` of either side
    is evaluated on the cases of seed ``s``, and the report pools the seeds, so a difference between the sides
    is not one seed's luck. ``policy_protocol``: ``pooled`` trains one KALM policy on every imagined level,
    ``per_level`` one per level (the paper's protocol; the rephrase policy plays the training goals).
    """

    model: dict[str, Any]
    data: dict[str, Any]
    trainer: dict[str, Any]
    policy_protocol: str = "pooled"
    num_seeds: int = 3


@dataclass
class EvaluateConfig:
    """Evaluation in the real environment: ``episodes`` cases per level for each training seed (each seed its
    own cases; the floors play all of them); the grounded LM acting as a policy on the first
    ``llm_policy_episodes`` cases of the first seed (0: not evaluated). ``unseen_phrasings`` adds the column
    of rephrase goals said in sentences imagination never prompted with (``kalm.envs.cases``)."""

    levels: list[str] = field(default_factory=lambda: ["train", "rephrase", "easy", "hard"])
    unseen_phrasings: bool = True
    episodes: int = 200
    llm_policy_episodes: int = 100
    gifs: int = 3


@dataclass
class RunConfig:
    """A whole KALM run (built by :func:`parse`; see the module docstring for the sections).

    Args:
        name: run name; the run folder is ``<out>/<name>``.
        env: registered environment.
        org: namespace of the published repos.
        seed: base seed of every stage.
        out: parent folder of run folders.
        hub_endpoint: Hub URL (default: ``$KALM_HUB_ENDPOINT``/``$HF_ENDPOINT``, else a local server).
        trainer: device placement of the Lightning stages.
    """

    collect: CollectConfig
    ground: GroundConfig
    learn: LearnConfig
    name: str = "default"
    env: str = "clevr"
    org: str = "kalm"
    seed: int = 0
    out: str = "runs"
    hub_endpoint: str | None = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    imagine: ImagineSettings = field(default_factory=ImagineSettings)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)


_TOP_LEVEL = ("name", "env", "org", "seed", "out", "hub_endpoint")


def run_parser() -> ArgumentParser:
    """The ``kalm run`` parser: the run's own settings and each stage's section from its command's classes."""
    import lightning as L
    from jsonargparse import ActionConfigFile, ArgumentParser

    from datamodules.rollout_goal import RolloutGoalDataModule
    from datamodules.transitions import TransitionDataModule
    from kalm.commands.collect import collect
    from kalm.grounding.module import GroundingModule
    from kalm.rl.module import OfflineRLModule

    parser = ArgumentParser(
        prog="kalm run",
        parser_mode="omegaconf",
        description="The whole KALM pipeline: collect, ground, imagine, learn, evaluate, report.",
    )
    parser.add_argument("--config", action=ActionConfigFile, help="a preset, e.g. configs/run/default.yaml")
    parser.add_class_arguments(
        RunConfig, skip={"ground", "learn", "trainer", "collect", "imagine", "evaluate"}
    )
    parser.add_class_arguments(TrainerConfig, "trainer")
    parser.add_function_arguments(collect, "collect", skip={"env", "out", "seed", "progress"})
    parser.add_argument(
        "--collect.pull",
        type=str | None,
        default=None,
        help="REPO[@REV]: use this real dataset instead of collecting one",
    )
    for stage, module, data in (
        ("ground", GroundingModule, RolloutGoalDataModule),
        ("learn", OfflineRLModule, TransitionDataModule),
    ):
        parser.add_class_arguments(module, f"{stage}.model", skip=set(LINKED[f"{stage}.model"]))
        parser.add_class_arguments(data, f"{stage}.data", skip=set(LINKED[f"{stage}.data"]))
        parser.add_class_arguments(
            L.Trainer, f"{stage}.trainer", skip=set(RUN_OWNED_TRAINER), fail_untyped=False
        )
    parser.add_argument(
        "--ground.pull",
        type=str | None,
        default=None,
        help="REPO[@REV]: use this grounded model instead of grounding one",
    )
    parser.add_argument(
        "--ground.stall_check",
        type=bool,
        default=True,
        help="abandon a grounding whose validation action loss is still at chance (kalm.grounding.health)",
    )
    parser.add_argument(
        "--ground.restarts",
        type=int,
        default=1,
        help="groundings from scratch (new seed) after a stalled one",
    )
    parser.add_argument("--learn.policy_protocol", type=str, default="pooled", help="pooled or per_level")
    parser.add_argument("--learn.num_seeds", type=int, default=3, help="policies trained per side")
    parser.add_class_arguments(ImagineSettings, "imagine")
    parser.add_class_arguments(EvaluateConfig, "evaluate")
    parser.set_defaults(RUN_DEFAULTS)
    return parser


def parse(argv: list[str]) -> RunConfig:
    """The run configuration from a preset file and overrides (the embedded defaults otherwise)."""
    check_renamed(argv)
    namespace = run_parser().parse_args(argv)
    values = namespace.as_dict()
    return RunConfig(
        **{key: values[key] for key in _TOP_LEVEL},
        trainer=TrainerConfig(**values["trainer"]),
        collect=CollectConfig(**values["collect"]),
        ground=GroundConfig(**values["ground"]),
        imagine=ImagineSettings(**values["imagine"]),
        learn=LearnConfig(**values["learn"]),
        evaluate=EvaluateConfig(**values["evaluate"]),
    )


def check_renamed(argv: list[str]) -> None:
    """Fail with the new key when ``argv`` or a ``--config`` file it names uses a key of the 0.1 run
    sections."""
    import yaml

    keys: dict[str, Any] = {}
    for at, token in enumerate(argv):
        if not token.startswith("--"):
            continue
        name, _, value = token[2:].partition("=")
        value = value or (argv[at + 1] if at + 1 < len(argv) else "")
        if name == "config":
            keys |= _dotted(yaml.safe_load(Path(value).read_text()) or {}) if Path(value).is_file() else {}
        else:
            keys[name] = value
    for key, value in keys.items():
        if key == "ground.model" and isinstance(value, str) and not Path(value).is_file():
            raise ConfigError(
                f"ground.model={value!r}: ground.model now holds GroundingModule's arguments; pull a "
                "grounded model with ground.pull"
            )
        if key in RENAMED:
            raise ConfigError(f"{key} was renamed: use {RENAMED[key]} (see CHANGELOG.md)")


def _dotted(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a": {"b": 1}, "a.b": 1}``: every key of a nested config, dotted."""
    keys: dict[str, Any] = {}
    for key, value in tree.items():
        keys[prefix + key] = value
        if isinstance(value, dict):
            keys |= _dotted(value, f"{prefix}{key}.")
    return keys
