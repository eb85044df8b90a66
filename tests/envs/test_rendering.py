"""MuJoCo's GL backend: it is fixed when ``mujoco`` is imported, so kalm chooses it (EGL when headless) on
``import kalm.envs``, before any of its environment modules imports mujoco (see ``kalm.envs.rendering``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from kalm.envs.rendering import headless_gl

_GL_VARIABLES = ("MUJOCO_GL", "DISPLAY", "PYOPENGL_PLATFORM")


def _python(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter (no GL variable set unless given); it prints one JSON object."""
    clean = {k: v for k, v in os.environ.items() if k not in _GL_VARIABLES}
    done = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mujoco_reads_mujoco_gl_when_imported_not_when_rendering():
    """The premise of importing-time configuration. If this fails, mujoco now reads ``MUJOCO_GL`` lazily:
    ``headless_gl()`` can then move from ``kalm.envs``'s import to the render entry points."""
    late = _python(
        "import json, os, mujoco; os.environ['MUJOCO_GL'] = 'egl'; "
        "print(json.dumps({'backend': mujoco.GLContext.__module__}))"
    )
    assert late["backend"] == "mujoco.glfw"  # set after the import: ignored
    early = _python(
        "import json, mujoco; print(json.dumps({'backend': mujoco.GLContext.__module__}))", MUJOCO_GL="egl"
    )
    assert early["backend"] == "mujoco.egl"


@pytest.mark.parametrize("module", ["kalm.envs.clevr.physics", "kalm.envs.clevr", "kalm.envs.metaworld"])
def test_kalm_chooses_egl_before_its_environments_import_mujoco(module):
    seen = _python(
        f"import json, os, sys, {module}; import mujoco; "
        "print(json.dumps({'variable': os.environ.get('MUJOCO_GL'), 'backend': mujoco.GLContext.__module__}))"
    )
    assert seen == {"variable": "egl", "backend": "mujoco.egl"}


def test_importing_kalm_envs_imports_no_mujoco():
    """So ``headless_gl()`` at the end of ``kalm/envs/__init__.py`` still runs before mujoco's import."""
    seen = _python("import json, sys, kalm.envs; print(json.dumps({'mujoco': 'mujoco' in sys.modules}))")
    assert seen == {"mujoco": False}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "egl"),
        ({"MUJOCO_GL": "osmesa"}, "osmesa"),
        ({"MUJOCO_GL": "disable"}, "disable"),
        ({"DISPLAY": ":0"}, None),
    ],
)
def test_a_users_backend_or_display_is_left_alone(monkeypatch, env, expected):
    for variable in _GL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    assert headless_gl() == expected
    assert os.environ.get("MUJOCO_GL") == expected
