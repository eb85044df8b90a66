"""Judges and rewards on hand-built states (no simulator)."""

import numpy as np
import pytest

from kalm.envs.clevr import judges
from kalm.envs.clevr.specs import AllOf, Gather, LineUp, Relation, Step, parse_spec

RED, BLUE, GREEN, PURPLE, CYAN = range(5)
FAR = {GREEN: [-0.4, -0.4], PURPLE: [0.4, -0.4], CYAN: [0.4, 0.4]}


def state(**balls):
    """A 10-d observation; unnamed balls sit in far corners."""
    layout = {RED: [0.0, 0.3], BLUE: [-0.3, 0.3], **FAR}
    names = {"red": RED, "blue": BLUE, "green": GREEN, "purple": PURPLE, "cyan": CYAN}
    for name, xy in balls.items():
        layout[names[name]] = xy
    return np.array([layout[b] for b in range(5)], dtype=np.float32).reshape(-1)


def holds(spec, observation, initial=None):
    initial = observation if initial is None else initial
    return bool(judges.success(spec, observation[None], initial)[0])


RED_LEFT_OF_BLUE = Relation(RED, BLUE, "left")


@pytest.mark.parametrize(
    ("red", "expected"),
    [
        ([-0.2, 0.0], True),  # 0.2 to the left
        ([-0.38, 0.0], True),
        ([-0.40, 0.0], False),  # too far
        ([0.2, 0.0], False),  # wrong side
        ([-0.2, 0.19], True),  # 43.5 degrees off the axis
        ([-0.2, 0.21], False),  # 46.4 degrees
    ],
)
def test_relation_judge(red, expected):
    assert holds(RED_LEFT_OF_BLUE, state(red=red, blue=[0.0, 0.0])) is expected


@pytest.mark.parametrize(
    ("direction", "offset"), [("behind", [0, 0.2]), ("front", [0, -0.2]), ("right", [0.2, 0])]
)
def test_relation_directions(direction, offset):
    relation = Relation(RED, BLUE, direction)
    assert holds(relation, state(red=offset, blue=[0.0, 0.0]))
    assert not holds(relation, state(red=[-o for o in offset], blue=[0.0, 0.0]))


@pytest.mark.parametrize(
    ("moved", "expected"),
    [
        ([-0.10, 0.0], True),
        ([-0.03, 0.0], False),  # not far enough
        ([0.10, 0.0], False),  # wrong way
        ([-0.09, 0.09], True),  # a diagonal push towards the left counts
        ([-0.05, 0.12], False),  # mostly sideways
    ],
)
def test_step_judge_is_relative_to_the_initial_state(moved, expected):
    initial = state(red=[0.0, 0.0])
    after = state(red=moved)
    assert holds(Step(RED, "left"), after, initial) is expected


def test_all_of_needs_every_relation():
    spec = AllOf((RED_LEFT_OF_BLUE, Relation(GREEN, BLUE, "front")))
    both = state(red=[-0.2, 0.0], blue=[0.0, 0.0], green=[0.0, -0.2])
    one = state(red=[-0.2, 0.0], blue=[0.0, 0.0], green=[0.3, 0.2])
    assert holds(spec, both)
    assert not holds(spec, one)
    assert judges.progress(spec, np.stack([one, both]), one).tolist() == [1.0, 2.0]


def test_line_up_judge():
    spec = LineUp((RED, BLUE, GREEN, PURPLE, CYAN))
    line = np.array([[-0.4, 0.0], [-0.2, 0.05], [0.0, -0.05], [0.2, 0.0], [0.4, 0.02]]).reshape(-1)
    assert holds(spec, line)
    bent = line.reshape(5, 2).copy()
    bent[2, 1] = 0.2  # blue -> green now 45 degrees up
    assert not holds(spec, bent.reshape(-1))
    swapped = line.reshape(5, 2)[[1, 0, 2, 3, 4]].reshape(-1)
    assert not holds(spec, swapped)


def test_gather_judge():
    spec = Gather(GREEN)
    around = np.array([[0.2, 0.0], [-0.2, 0.0], [0.0, 0.0], [0.0, 0.2], [0.0, -0.3]]).reshape(-1)
    assert holds(spec, around)
    one_out = around.copy()
    one_out[9] = -0.35
    assert not holds(spec, one_out)
    assert judges.progress(spec, one_out[None], one_out)[0] == 3.0


def test_reward_is_scaled_progress_plus_success_bonus():
    start = state(red=[0.3, 0.0], blue=[0.0, 0.0])
    closer = state(red=[0.1, 0.3], blue=[0.0, 0.0])  # closer, wrong sector
    done = state(red=[-0.2, 0.0], blue=[0.0, 0.0])
    rewards = judges.rewards(RED_LEFT_OF_BLUE, np.stack([start, closer, done]))
    d0, d1 = 0.3, np.hypot(0.1, 0.3)
    assert rewards[0] == pytest.approx(10 * (d0 - d1), abs=1e-5)
    assert rewards[1] == pytest.approx(10 * (d1 - 0.2) + 100, abs=1e-5)


def test_reward_penalises_disturbing_uninvolved_balls():
    start = state(red=[0.3, 0.0], blue=[0.0, 0.0])
    nudged = state(red=[0.3, 0.0], blue=[0.0, 0.0], cyan=[0.4, 0.25])  # cyan moved 0.15
    knocked = state(red=[0.3, 0.0], blue=[0.0, 0.0], cyan=[0.4, 0.1])  # cyan moved 0.30
    rewards = judges.rewards(RED_LEFT_OF_BLUE, np.stack([start, nudged]))
    assert rewards[0] == pytest.approx(-0.15, abs=1e-5)
    rewards = judges.rewards(RED_LEFT_OF_BLUE, np.stack([start, knocked]))
    assert rewards[0] == pytest.approx(-0.30 - 10, abs=1e-5)


def test_judges_are_vectorised_over_time():
    observations = np.stack([state(red=[x, 0.0], blue=[0.0, 0.0]) for x in (0.3, 0.1, -0.1, -0.2)])
    assert judges.success(RED_LEFT_OF_BLUE, observations, observations[0]).tolist() == [
        False,
        False,
        True,
        True,
    ]
    assert judges.first_success(RED_LEFT_OF_BLUE, observations) == 2


def test_goal_ids_round_trip():
    for spec in [
        RED_LEFT_OF_BLUE,
        Step(CYAN, "front"),
        AllOf((RED_LEFT_OF_BLUE, Relation(GREEN, CYAN, "behind"))),
        LineUp((CYAN, RED, BLUE, GREEN, PURPLE)),
        Gather(GREEN),
    ]:
        assert parse_spec(spec.id) == spec
