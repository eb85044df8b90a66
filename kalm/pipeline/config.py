"""The configuration of a whole KALM run (``kalm run --config configs/run/<preset>.yaml``).

Every stage has its own section; a stage that names an existing artefact (``collect.dataset``,
``ground.model``) pulls it instead of producing it. The resolved configuration is written into the run
folder, and each stage's part of it keys the stage's cache (see ``state``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kalm.imagine.settings import ImagineSettings

DEFAULT_PER_GOAL = {"rephrase": 32, "easy": 64, "hard": 16}
"""Imagined rollouts per goal of each novel level in ``kalm run``: most where imagination is cheap and right
(easy goals take a few steps; rollouts that leave the table stop at once), as the paper's 5,600 / 72,400 /
1,680 split."""


@dataclass
class CollectConfig:
    """Real data: collect with the behaviour policy, or pull ``dataset`` (``REPO[@REV]``) instead."""

    episodes: int = 2000
    noise: float = 0.1
    random_fraction: float = 0.1
    dataset: str | None = None


@dataclass
class GroundConfig:
    """Grounding: fine-tune ``backbone``, or pull a grounded ``model`` (``REPO[@REV]``) instead.

    ``init_from`` (``REPO[@REV]`` or a folder) grounds further from a grounded model instead of from the raw
    backbone (same command for a new environment and for more data of the same one): its backbone, which
    ``backbone`` must name, its fine-tuned weights and, when the rollout shapes match, its codec
    (``kalm.grounding.parent``). The model is published as ``<org>/kalm-<env>-grounded-<backbone>-from-<parent
    env>``.
    """

    model: str | None = None
    init_from: str | None = None
    backbone: str = "smollm2-135m"
    num_layers: int | None = 8
    finetune: str = "lora"
    lora_rank: int = 32
    lora_alpha: int = 64
    lora_targets: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    residual_states: bool = True
    lr: float = 1e-3
    codec_lr: float | None = 3e-3
    max_steps: int = 800
    batch_size: int = 16
    tasks_per_episode: int = 2
    task_weights: list[float] = field(default_factory=lambda: [3.0, 1.0, 1.0, 1.0])
    explanation_phrasing: str = "any"
    max_episodes: int | None = None
    val_check_interval: int = 400
    explain_episodes: int = 64
    match_goals: int = 32


@dataclass
class LearnConfig:
    """Offline RL: the same algorithm, steps and seeds for the baseline and the KALM policy.

    ``num_seeds`` policies are trained per side (seeds ``seed``, ``seed + 1``, ...); seed ``s`` of either side is
    evaluated on the cases of seed ``s``, and the report pools the seeds, so a difference between the sides is
    not one seed's luck. ``policy_protocol``: ``pooled`` trains one KALM policy on every imagined level,
    ``per_level`` one per level (the paper's protocol; the rephrase policy plays the training goals).
    """

    algorithm: str = "bc"
    policy_protocol: str = "pooled"
    num_seeds: int = 3
    steps: int = 3000
    batch_size: int = 256
    batches_per_step: int = 4
    imaginary_ratio: float = 0.25
    imaginary_successful_only: bool = True
    gamma: float = 0.99
    hyper: dict[str, float] = field(default_factory=dict)


@dataclass
class EvaluateConfig:
    """Evaluation in the real environment: ``episodes`` cases per level for each training seed (each seed its own
    cases; the floors play all of them); the grounded LM acting as a policy on the first ``llm_policy_episodes``
    cases of the first seed (0: not evaluated). ``unseen_phrasings`` adds the column of rephrase goals said in
    sentences imagination never prompted with (``kalm.envs.cases``)."""

    levels: list[str] = field(default_factory=lambda: ["train", "rephrase", "easy", "hard"])
    unseen_phrasings: bool = True
    episodes: int = 200
    llm_policy_episodes: int = 100
    gifs: int = 3


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


@dataclass
class RunConfig:
    """A whole KALM run.

    Args:
        name: run name; the run folder is ``<out>/<name>``.
        env: registered environment.
        org: namespace of the published repos.
        seed: base seed of every stage.
        out: parent folder of run folders.
        hub_endpoint: Hub URL (default: ``$KALM_HUB_ENDPOINT``/``$HF_ENDPOINT``, else a local server).
        trainer: device placement of the Lightning stages.
    """

    name: str = "default"
    env: str = "clevr"
    org: str = "kalm"
    seed: int = 0
    out: str = "runs"
    hub_endpoint: str | None = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    ground: GroundConfig = field(default_factory=GroundConfig)
    imagine: ImagineSettings = field(
        default_factory=lambda: ImagineSettings(per_goal=dict(DEFAULT_PER_GOAL), greedy=False)
    )
    learn: LearnConfig = field(default_factory=LearnConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
