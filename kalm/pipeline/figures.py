"""Report figures: an imagined rollout next to the real environment replaying its actions, as a GIF.

The left panel renders the states the grounded LM imagined; the right panel resets the real
environment to the same initial state and replays the imagined actions, so a reader sees where the
imagination agrees with physics and where it drifts (the paper's Figs. 9-11).
"""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from kalm.envs.base import EnvSuite
from kalm.imagine.replay import replay


def rollout_gif(
    suite: EnvSuite,
    path: str | Path,
    *,
    goal_id: str,
    level: str,
    sentence: str,
    observations: np.ndarray,
    actions: np.ndarray,
    seed: int = 0,
    size: int = 160,
    fps: int = 2,
) -> Path | None:
    """Write the side-by-side GIF; ``None`` when the environment cannot render observations."""
    if suite.render_observation(observations[0], size=size, goal_id=goal_id) is None:
        return None
    real, _ = replay(suite, goal_id, level, observations, actions, seed=seed)
    real = np.concatenate(
        [real, np.repeat(real[-1:], len(observations) - len(real), axis=0)]
    )  # the real episode may end first
    frames = []
    for step, (imagined, actual) in enumerate(zip(observations, real, strict=True)):
        panels = np.concatenate(
            [
                suite.render_observation(imagined, size=size, goal_id=goal_id),
                suite.render_observation(actual, size=size, goal_id=goal_id),
            ],
            axis=1,
        )
        frames.append(_caption(panels, sentence, f"{level} goal, step {step}: imagined | real replay"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, frames, duration=1000 // fps, loop=0)
    return path


def _caption(panels: np.ndarray, title: str, subtitle: str) -> np.ndarray:
    height, width = panels.shape[:2]
    canvas = Image.new("RGB", (width, height + 30), "white")
    canvas.paste(Image.fromarray(panels), (0, 30))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    draw.text((4, 2), title[: width // 6], fill="black", font=font)
    draw.text((4, 15), subtitle, fill=(90, 90, 90), font=font)
    return np.asarray(canvas)
