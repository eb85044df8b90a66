"""``kalm ground fit|validate --config configs/ground/<name>.yaml``: LightningCLI over the grounding stage."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.cli import LightningCLI

from datamodules.rollout_goal import RolloutGoalDataModule
from kalm.commands import add_publishing_arguments
from kalm.grounding.module import GroundingModule


class GroundingCLI(LightningCLI):
    """Links the datamodule's tokenizer, environment and state layout to the model's, and takes the
    publishing flags of ``kalm learn``: ``--push_to REPO`` publishes the grounded model after ``fit``
    (``kalm.grounding.hub.PublishGroundedModel``) as ``--push_version`` (default: the next free version) on
    ``--hub_endpoint`` (default: kalm's endpoint resolution, a local server)."""

    def add_arguments_to_parser(self, parser: Any) -> None:  # a jsonargparse LightningArgumentParser
        parser.link_arguments("model.backbone", "data.backbone")
        parser.link_arguments("model.env", "data.env")
        parser.link_arguments("model.object_tokens", "data.object_tokens")
        add_publishing_arguments(parser, "grounded model")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("hub_endpoint"):
            from kalm.hub.endpoint import ensure_endpoint

            ensure_endpoint(config["hub_endpoint"])

    def before_fit(self) -> None:
        config = self.config[self.subcommand]
        if config.get("push_to"):
            from kalm.grounding.hub import PublishGroundedModel

            publish = PublishGroundedModel(config["push_to"], config.get("push_version"))
            self.trainer.callbacks.append(publish)  # type: ignore[attr-defined]  # set in Trainer.__init__, untyped


def ground_cli(argv: list[str]) -> GroundingCLI:
    """Run the grounding LightningCLI on ``argv`` (``fit``, ``validate``, ... and their options)."""
    return GroundingCLI(
        GroundingModule,
        RolloutGoalDataModule,
        args=argv,
        seed_everything_default=0,
        # sys.argv stays as launched: Lightning's DDP launcher re-runs it for the other local ranks
        parser_kwargs={"parser_mode": "omegaconf", "prog": "kalm ground"},
        save_config_kwargs={"overwrite": True},
    )


def main(argv: list[str]) -> int:
    """Run ``kalm ground <fit|validate|...> --config FILE [--overrides]``."""
    ground_cli(argv)
    return 0
