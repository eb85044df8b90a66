"""``kalm learn ...``: a LightningCLI subcommand tree over ``OfflineRLModule`` and ``TransitionDataModule``.

``kalm learn fit --config configs/learn/clevr_bc.yaml``; after ``fit`` it writes ``provenance.json`` next to
the logs, exports the policy folder and, with ``--push_to <repo>``, publishes it as a versioned Hub model
repo.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.cli import LightningCLI

from datamodules.transitions import TransitionDataModule
from kalm.commands import add_publishing_arguments, user_error
from kalm.errors import KalmError
from kalm.rl.module import OfflineRLModule


class LearnCLI(LightningCLI):
    """Adds the publishing flags and, after ``fit``, the provenance, the policy export and the push."""

    policy_folder: Path

    def add_arguments_to_parser(self, parser: Any) -> None:  # a jsonargparse LightningArgumentParser
        add_publishing_arguments(parser, "trained policy")

    def after_fit(self) -> None:
        self.policy_folder = finish_fit(
            self.trainer, self.model, self.datamodule, self.config[self.subcommand]
        )


def learn_cli(argv: list[str]) -> LearnCLI:
    """Build and run the ``kalm learn`` LightningCLI on ``argv``; returns the CLI (trainer, model, data)."""
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
        return user_error(error)
    return 0


main = learn_main


def train_policy(config: str | Path, *overrides: str) -> Path:
    """``kalm learn fit --config CONFIG [overrides]`` from Python; returns the exported policy folder.

    E.g. ``train_policy("configs/learn/clevr_bc.yaml", "--data.imaginary",
    "[{repo_or_path: org/kalm-clevr-imaginary, revision: v1.0}]")``.
    """
    return Path(learn_cli(["fit", "--config", str(config), *overrides]).policy_folder)


def finish_fit(trainer: Any, model: OfflineRLModule, datamodule: TransitionDataModule, config: Any) -> Path:
    """Write ``provenance.json``, export the policy and push it if asked; returns the policy folder."""
    from kalm.hub.provenance import write_run_provenance
    from kalm.rl.policy import push_policy

    root = Path(trainer.log_dir or trainer.default_root_dir)
    folder = Path(model.hparams.get("export_dir") or root / "policy")
    if trainer.is_global_zero:
        write_run_provenance(root, inputs=datamodule.inputs, steps=trainer.global_step)
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
