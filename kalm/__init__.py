"""KALM: Knowledgeable Agents by offline reinforcement Learning from LLM rollouts.

The package is organised by the paper's pipeline: ``envs`` (real environments, goals per level, judges),
``data`` (the rollout dataset format), ``hub`` (versioned publish/pull through Hugging Face clients),
``grounding`` (the grounded LLM), ``imagine`` (imaginary rollouts) and ``rl`` (offline learners).
Importing ``kalm`` is cheap: heavy dependencies load inside the subpackages that need them.
"""

__version__ = "0.1.0.dev0"

LOGGERS = ("kalm", "datamodules")
"""The loggers kalm's records go to: the package's and its LightningDataModules'."""
