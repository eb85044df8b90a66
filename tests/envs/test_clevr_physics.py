import numpy as np
import pytest

from kalm.envs.clevr.physics import (
    DIRECTION_NAMES,
    DIRECTIONS,
    TABLE_HALF_SIZE,
    ClevrPhysics,
    action_index,
    sample_positions,
)
from kalm.errors import KalmError

SPREAD = np.array([[0.0, 0.0], [0.4, 0.4], [-0.4, 0.4], [0.4, -0.4], [-0.4, -0.4]])


@pytest.fixture(scope="module")
def physics():
    return ClevrPhysics()


@pytest.mark.parametrize("direction", range(len(DIRECTIONS)), ids=DIRECTION_NAMES)
@pytest.mark.parametrize("ball", [0, 3])
def test_push_moves_the_ball_along_the_direction_and_leaves_far_balls_still(physics, ball, direction):
    start = np.roll(SPREAD, ball, axis=0)
    physics.set_positions(start)
    physics.push(action_index(ball, direction))
    moved = physics.positions - start
    step = moved[ball]
    assert 0.1 < np.linalg.norm(step) < 0.16
    cosine = step @ DIRECTIONS[direction] / np.linalg.norm(step)
    assert cosine > 0.999
    others = np.delete(moved, ball, axis=0)
    assert np.abs(others).max() < 1e-9


def test_direction_words_follow_the_reference():
    named = dict(zip(DIRECTION_NAMES, DIRECTIONS, strict=True))
    assert named["behind"].tolist() == [0.0, 1.0]
    assert named["front"].tolist() == [0.0, -1.0]
    assert named["left"].tolist() == [-1.0, 0.0]
    assert named["right"].tolist() == [1.0, 0.0]


def test_a_pushed_ball_pushes_the_ball_in_its_way(physics):
    start = SPREAD.copy()
    start[1] = [0.12, 0.0]  # blue right next to red
    physics.set_positions(start)
    physics.push(action_index(0, 0))  # red to the right
    assert physics.positions[1, 0] > 0.12 + 0.05


def test_walls_keep_balls_on_the_table(physics):
    start = SPREAD.copy()
    start[0] = [0.4, 0.0]
    physics.set_positions(start)
    for _ in range(5):
        physics.push(action_index(0, 0))
    assert physics.positions[0, 0] <= TABLE_HALF_SIZE


def test_invalid_action_is_rejected(physics):
    with pytest.raises(KalmError, match=r"expected an integer in \[0, 40\)"):
        physics.push(40)


def test_sampled_positions_are_spread_and_seeded():
    a = sample_positions(np.random.default_rng(3))
    b = sample_positions(np.random.default_rng(3))
    assert np.array_equal(a, b)
    gaps = np.linalg.norm(a[:, None] - a[None], axis=-1) + np.eye(5)
    assert gaps.min() >= 0.15
