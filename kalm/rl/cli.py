"""Command-line entry points of the offline-RL stage: ``kalm learn ...`` and ``kalm evaluate``.

``learn_main`` is a LightningCLI subcommand tree over :class:`~kalm.rl.module.OfflineRLModule` and
``datamodules.transitions.TransitionDataModule`` (``kalm learn fit --config configs/learn/clevr_bc.yaml``);
after ``fit`` it writes ``provenance.json`` next to the logs, exports the policy folder and, with
``--push_to <repo>``, publishes it as a versioned Hub model repo. ``evaluate_main`` parses
:func:`evaluate` with jsonargparse. This module is recipe code: it is the one place in ``kalm.rl``
that imports ``datamodules`` (lazily).
"""

from __future__ import annotations

import json
import logging
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from kalm.envs import LEVELS
from kalm.errors import KalmError
from kalm.hub.naming import split_revision

log = logging.getLogger(__name__)
PACKAGES = ("torch", "torchrl", "tensordict", "lightning", "sentence-transformers", "datasets")


def learn_cli(argv: list[str]) -> Any:
    """Build and run the ``kalm learn`` LightningCLI on ``argv``; returns the CLI (trainer, model, data)."""
    from lightning.pytorch.cli import LightningCLI

    from datamodules.transitions import TransitionDataModule
    from kalm.rl.module import OfflineRLModule

    class LearnCLI(LightningCLI):
        def add_arguments_to_parser(self, parser: Any) -> None:
            parser.add_argument(
                "--push_to",
                type=str | None,
                default=None,
                help="Hub model repo id to publish the trained policy to (versioned)",
            )
            parser.add_argument(
                "--push_version", type=str | None, default=None, help="version tag, e.g. v1.0"
            )
            parser.add_argument(
                "--hub_endpoint", type=str | None, default=None, help="Hub URL (default: local)"
            )

        def after_fit(self) -> None:
            self.policy_folder = finish_fit(
                self.trainer, self.model, self.datamodule, self.config[self.subcommand]
            )

    return LearnCLI(
        OfflineRLModule,
        TransitionDataModule,
        args=argv,
        parser_kwargs={"parser_mode": "omegaconf", "prog": "kalm learn"},  # sys.argv stays as launched (DDP)
        save_config_kwargs={"overwrite": True},
        seed_everything_default=0,
    )


def learn_main(argv: list[str] | None = None) -> int:
    """Run ``kalm learn <fit|validate|...> --config FILE [--overrides]``; returns the exit status."""
    try:
        learn_cli(sys.argv[1:] if argv is None else list(argv))
    except KalmError as error:
        print(f"kalm: error: {error}", file=sys.stderr)
        return 2
    return 0


def train_policy(config: str | Path, *overrides: str) -> Path:
    """``kalm learn fit --config CONFIG [overrides]`` from Python; returns the exported policy folder.

    For pipeline code (``kalm run``): e.g. ``train_policy("configs/learn/clevr_bc.yaml",
    "--data.imaginary", "[{repo_or_path: org/kalm-clevr-imaginary, revision: v1.0}]")``.
    """
    return Path(learn_cli(["fit", "--config", str(config), *overrides]).policy_folder)


def finish_fit(trainer: Any, model: Any, datamodule: Any, config: Any) -> Path:
    """Write ``provenance.json``, export the policy and push it if asked; returns the policy folder."""
    from kalm.hub.provenance import kalm_provenance
    from kalm.rl.policy import push_policy

    root = Path(trainer.log_dir or trainer.default_root_dir)
    folder = Path(model.hparams.export_dir or root / "policy")
    provenance = {
        **kalm_provenance(),
        "packages": {name: version(name) for name in PACKAGES},
        "inputs": datamodule.inputs,
        "steps": trainer.global_step,
    }
    if trainer.is_global_zero:
        root.mkdir(parents=True, exist_ok=True)
        (root / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n")
        if not (folder / "policy.json").exists():  # OfflineRLModule.on_fit_end normally wrote it
            model.export_policy(folder)
        if config.get("push_to"):
            published = push_policy(
                folder,
                config["push_to"],
                version=config.get("push_version"),
                provenance={
                    "source_datasets": [
                        {"repo_id": i["repo_or_path"], "revision": i["revision"]}
                        for i in datamodule.inputs
                        if i["commit"]
                    ]
                },
                hub_endpoint=config.get("hub_endpoint"),
            )
            print(f"published {published.repo_id} {published.version} ({published.commit})")
        print(f"policy -> {folder}")
    return folder


def evaluate(
    policies: list[str] | None = None,
    names: list[str] | None = None,
    env: str | None = None,
    levels: list[str] | None = None,
    episodes: int = 100,
    seed: int = 0,
    num_envs: int = 8,
    out: Path = Path("outputs/evaluate"),
    hub_endpoint: str | None = None,
    floors: bool = True,
    llm_policy: str | None = None,
    progress: bool = True,
) -> Any:
    """Evaluate policies in the real environment per goal level; write JSON, markdown and a PNG chart.

    Args:
        policies: policy folders or Hub model repos (``namespace/name`` or ``namespace/name@revision``).
        names: display names (default: ``<algorithm>:<folder name>``), e.g. ``[baseline, KALM]``.
        env: environment name (default: the one the first policy was trained on).
        levels: goal levels (default: train, rephrase, easy, hard).
        episodes: episodes per level and policy; cases are fixed by ``seed``.
        seed: seed of the evaluation cases (every policy sees the same cases).
        num_envs: environments stepped in lockstep with one batched forward.
        out: output folder for report.json, report.md and success.png.
        hub_endpoint: Hub URL for repo inputs (default: kalm's endpoint resolution).
        floors: also evaluate the environment's floor policies (``EnvSuite.floor_policies``) on the same cases.
        llm_policy: also evaluate this grounded LM (``REPO[@REV]`` or a folder) acting as the policy in the real
            environment (the paper's "LLM as policy"), on the same cases.
        progress: show progress bars.

    Every policy after the first is compared with the first (the paired difference and its interval).
    """
    from kalm.envs import get_suite
    from kalm.rl.evaluation import evaluate_floors, evaluate_policy
    from kalm.rl.goal_encoder import GoalEncoder
    from kalm.rl.policy import load_policy
    from kalm.rl.report import EvalReport

    if not policies and not llm_policy:
        raise KalmError("nothing to evaluate: give --policies (policy folders or repos) and/or --llm_policy")
    loaded = [load_policy(*split_revision(item), hub_endpoint=hub_endpoint) for item in policies or []]
    names = list(names or [item.name for item in loaded])
    if len(names) != len(loaded):
        raise KalmError(f"{len(names)} names for {len(loaded)} policies; give one name per policy")
    env = env or (loaded[0].env if loaded else None) or "clevr"
    report = EvalReport(
        env,
        settings={
            "episodes": episodes,
            "seed": seed,
            "levels": list(levels or LEVELS),
            "policies": dict(zip(names, policies or [], strict=True)),
        },
        comparisons=[(name, names[0]) for name in names[1:]],
    )
    encoders: dict[str, GoalEncoder] = {}
    for name, item in zip(names, loaded, strict=True):
        encoder = encoders.setdefault(item.goal_encoder, GoalEncoder(item.goal_encoder))
        report.results[name] = evaluate_policy(
            item.policy,
            env,
            encoder,
            levels=levels or LEVELS,
            episodes=episodes,
            seed=seed,
            num_envs=num_envs,
            progress=progress,
        )
    if llm_policy:
        from kalm.grounding.hub import load_grounded
        from kalm.grounding.policy import LLM_POLICY, evaluate_llm_policy

        report.settings["llm_policy"] = llm_policy
        grounded = load_grounded(llm_policy)
        report.results[LLM_POLICY] = evaluate_llm_policy(
            grounded.model.eval(),
            get_suite(env),
            levels=levels or LEVELS,
            episodes=episodes,
            seeds=[seed],
            progress=progress,
        )
    if floors:
        report.add_floors(
            evaluate_floors(
                get_suite(env),
                levels=levels or LEVELS,
                episodes=episodes,
                seeds=[seed],
                num_envs=num_envs,
                progress=progress,
            )
        )
    paths = report.save(out)
    print(report.to_markdown())
    print(f"report -> {paths['json']}, {paths['markdown']}, {paths['png']}")
    return report


def evaluate_main(argv: list[str] | None = None) -> int:
    """Run ``kalm evaluate --policies [...] [--config FILE]``; returns the exit status."""
    from jsonargparse import CLI

    try:
        CLI(evaluate, args=argv, as_positional=False)
    except KalmError as error:
        print(f"kalm: error: {error}", file=sys.stderr)
        return 2
    return 0
