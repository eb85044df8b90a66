"""Environments of the KALM pipeline, by name, discovered as plugins.

An environment is an ``EnvSuite`` subclass registered under the entry-point group ``kalm.envs`` of any
installed distribution, the way gymnasium and pytest find their plugins::

    [project.entry-points."kalm.envs"]
    toyline = "kalm_toyline:ToyLineSuite"

kalm registers its own suites (``babyai``, ``clevr``, ``metaworld``) the same way in its ``pyproject.toml``. A
suite's module is imported on first use; ``kalm envs`` lists every registered suite with the package it comes
from.
"""

from __future__ import annotations

from functools import cache

import gymnasium as gym

from kalm.envs.base import EnvSuite
from kalm.envs.goals import LEVELS, NOVEL_LEVELS, Goal
from kalm.envs.registry import ENTRY_POINT_GROUP, EnvEntry, registered_envs
from kalm.envs.rendering import headless_gl
from kalm.errors import UnknownNameError

# Before any environment module imports mujoco, which fixes its GL backend when imported (none of the imports
# above does; see kalm.envs.rendering and tests/envs/test_rendering.py).
headless_gl()


@cache
def get_suite(name: str) -> EnvSuite:
    """The registered suite ``name``; an unknown name raises an error listing the registered ones."""
    entries = registered_envs()
    if name not in entries:
        known = ", ".join(sorted(entries)) or "none (is kalm installed? pip install -e .)"
        raise UnknownNameError(f"unknown environment {name!r}; registered: {known}")
    return entries[name].load()


def _register_gym_ids() -> None:
    if "kalm/CLEVR-Robot-v0" not in gym.registry:
        gym.register(id="kalm/CLEVR-Robot-v0", entry_point="kalm.envs.clevr.env:ClevrRobotEnv")
    if "kalm/MetaWorld-v0" not in gym.registry:
        gym.register(id="kalm/MetaWorld-v0", entry_point="kalm.envs.metaworld.env:MetaWorldEnv")
    if "kalm/BabyAI-v0" not in gym.registry:
        gym.register(id="kalm/BabyAI-v0", entry_point="kalm.envs.babyai.env:BabyAIEnv")


_register_gym_ids()

__all__ = [
    "ENTRY_POINT_GROUP",
    "LEVELS",
    "NOVEL_LEVELS",
    "EnvEntry",
    "EnvSuite",
    "Goal",
    "get_suite",
    "registered_envs",
]
