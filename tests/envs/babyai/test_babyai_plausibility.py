"""Plausibility of BabyAI observations: real episodes pass, broken rules are named, projection restores
them."""

from __future__ import annotations

import numpy as np
import pytest

from kalm.envs.babyai.scene import AGENT_DIM, SLOT, decode


def test_every_real_observation_is_plausible(babyai, bot_episodes):
    for episodes in bot_episodes.values():
        for episode in episodes:
            assert babyai.implausibility(episode["observations"]) is None, episode["goal_id"]


def _episode(bot_episodes):
    return next(e["observations"] for e in bot_episodes["train", 0.2] if len(e["observations"]) > 4)


def _floor_object(observation):
    """Index of the first object slot on the floor."""
    return next(slot for slot in range(4) if observation[AGENT_DIM + SLOT * slot + 4] == 0)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ("two cells", "exceeds_dynamics"),
        ("off the grid", "out_of_workspace"),
        ("teleport", "illegal_step"),
        ("into a wall", "inconsistent_state"),
        ("half a cell", "non_integer"),
        ("colour", "exceeds_dynamics"),
        ("nan", "non_finite"),
    ],
)
def test_broken_rules_are_named(babyai, bot_episodes, change, reason):
    states = _episode(bot_episodes).astype(np.float64).copy()
    slot = AGENT_DIM + SLOT * _floor_object(states[1])
    if change == "two cells":
        states[2, 0] = states[1, 0] + 2
    elif change == "off the grid":
        states[2:, 1] = 7
    elif change == "teleport":  # a floor object slides to a free cell beside it
        states = states[:2]
        layout = decode(states[0])
        taken = {(t.x, t.y) for t in layout.objects} | {layout.agent[:2]}
        x, y = states[0, slot + 2 : slot + 4]
        states[1, slot + 2 : slot + 4] = next(
            cell
            for cell in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1))
            if cell not in taken and 0 < min(cell) and max(cell) < 6
        )
    elif change == "into a wall":  # a corner of the room, from the start
        states = states[:1].copy()
        states[0, :2] = 0
    elif change == "half a cell":
        states[2, 0] += 0.5
    elif change == "colour":
        states[2, slot + 1] = 1 + states[1, slot + 1] % 6
    else:
        states[2, 3] = np.nan
    assert babyai.implausibility(states) == reason


def test_projection_rounds_and_restores_what_never_changes(babyai, bot_episodes):
    states = _episode(bot_episodes)
    noisy = states + np.random.default_rng(0).uniform(-0.4, 0.4, states.shape)
    slot = AGENT_DIM + SLOT * 4  # a door slot: type, colour and cell never change
    noisy[:, slot : slot + 4] += 3
    projected = babyai.project_states(noisy.astype(np.float32), np.repeat(states[:1], len(states), axis=0))
    np.testing.assert_array_equal(projected, states)
    assert babyai.implausibility(projected) is None


def test_projection_makes_the_carried_objects_repeated_fields_agree(babyai, bot_episodes):
    states = next(
        e["observations"] for e in bot_episodes["train", 0.2] if any(e["observations"][:, 3] > 0)
    )  # an episode that carries something
    carrying = states[states[:, 3] > 0][:1].astype(np.float64)
    broken = carrying.copy()
    broken[0, 3:5] = 0  # the agent's carried type and colour forgotten ...
    slot = AGENT_DIM + SLOT * next(s for s in range(4) if carrying[0, AGENT_DIM + SLOT * s + 4] == 1)
    broken[0, slot + 2 : slot + 4] += 1  # ... and the carried object a cell off
    np.testing.assert_array_equal(babyai.project_states(broken, states[:1]), carrying)
    dropped = carrying.copy()
    dropped[0, slot + 4] = 0  # no slot flagged: empty hands, the object where the model put it
    assert (babyai.project_states(dropped, states[:1])[0, 3:5] == 0).all()
