"""Which OpenGL backend MuJoCo renders with: EGL (headless) unless the user chose one or has a display.

MuJoCo picks its GL backend once, when ``mujoco`` is imported (``mujoco.gl_context`` reads ``MUJOCO_GL``
at import and binds ``mujoco.GLContext``); setting the variable later has no effect on that process. kalm
imports ``mujoco`` for physics long before anything renders (``kalm.envs.clevr.physics`` at import, Meta-World
through gymnasium), so the choice cannot wait for the render call: :func:`headless_gl` runs when
``kalm.envs`` is imported, which Python does before any of its environment modules, hence before kalm's first
``import mujoco``. ``tests/envs/test_rendering.py`` fails if mujoco starts reading the variable lazily (then
this call can move to the render entry points).
"""

from __future__ import annotations

import os

HEADLESS_BACKEND = "egl"


def headless_gl() -> str | None:
    """Default ``MUJOCO_GL`` to EGL when the user set none and there is no display; returns the backend in
    force.

    Must run before ``mujoco`` is first imported (see the module docstring); a user's ``MUJOCO_GL``
    (``glfw``, ``osmesa``, ``egl``, ``disable``) or an X display (``DISPLAY``: glfw works) is left alone.
    """
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = HEADLESS_BACKEND
    return os.environ.get("MUJOCO_GL")
