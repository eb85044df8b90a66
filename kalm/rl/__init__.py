"""Offline RL (KALM stage 3): goal encoder, networks, TorchRL learners, OfflineRLModule, evaluation.

Importing this package is cheap; the submodules import torch/torchrl/lightning when used:

- :mod:`kalm.rl.goal_encoder` — frozen sentence encoder with an embedding cache;
- :mod:`kalm.rl.networks` — 2x256 MLPs, ``Policy``; :mod:`kalm.rl.learners` — TorchRL loss factories;
- :mod:`kalm.rl.awac` — the AWAC loss; :mod:`kalm.rl.module` — ``OfflineRLModule``;
- :mod:`kalm.rl.policy` — save/load/push policy folders; :mod:`kalm.rl.evaluation` and
  :mod:`kalm.rl.report` — success per level; :mod:`kalm.rl.callbacks` (the commands: ``kalm.commands``).
"""
