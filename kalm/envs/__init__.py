"""Environments of the KALM pipeline, by name. Add one by implementing ``EnvSuite`` and registering it.

>>> sorted(SUITES)
['clevr', 'metaworld']
"""

from __future__ import annotations

import importlib
import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"  # headless rendering; must be set before mujoco is imported
from functools import cache

import gymnasium as gym

from kalm.envs.base import EnvSuite
from kalm.envs.goals import LEVELS, NOVEL_LEVELS, Goal
from kalm.errors import UnknownNameError

SUITES: dict[str, str] = {
    "clevr": "kalm.envs.clevr:ClevrSuite",
    "metaworld": "kalm.envs.metaworld:MetaWorldSuite",
}
"""Suite name -> ``module:class``; modules are imported on first use."""


@cache
def get_suite(name: str) -> EnvSuite:
    """The registered suite ``name``; an unknown name raises an error listing the registered ones."""
    if name not in SUITES:
        raise UnknownNameError(f"unknown environment {name!r}; registered: {', '.join(sorted(SUITES))}")
    module, _, cls = SUITES[name].partition(":")
    return getattr(importlib.import_module(module), cls)()


def _register_gym_ids() -> None:
    if "kalm/CLEVR-Robot-v0" not in gym.registry:
        gym.register(id="kalm/CLEVR-Robot-v0", entry_point="kalm.envs.clevr.env:ClevrRobotEnv")
    if "kalm/MetaWorld-v0" not in gym.registry:
        gym.register(id="kalm/MetaWorld-v0", entry_point="kalm.envs.metaworld.env:MetaWorldEnv")


_register_gym_ids()

__all__ = ["LEVELS", "NOVEL_LEVELS", "SUITES", "EnvSuite", "Goal", "get_suite"]
