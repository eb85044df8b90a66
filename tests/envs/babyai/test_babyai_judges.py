"""kalm's state-only BabyAI judges against BabyAI's own verifier, rewards from states, and the sequence
rules."""

from __future__ import annotations

import numpy as np
import pytest

from kalm.envs.babyai import judges
from kalm.envs.babyai.missions import GoTo, Obj, PickUp, PutNext, Sequence, parse_spec
from kalm.envs.babyai.scene import Layout, Thing, encode

LEVELS = ("train", "rephrase", "easy", "hard")


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("noise", [0.2, 1.0])
def test_judges_agree_with_babyais_verifier_on_every_step(bot_episodes, level, noise):
    ended = {"success": 0, "failure": 0}
    for episode in bot_episodes[level, noise]:
        infos = episode["infos"]
        babyai = [info["babyai_success"] for info in infos]
        kalm = [info["success"] for info in infos]
        # BabyAI's verifier says success exactly at the step kalm's judge does (never before an episode ends)
        assert babyai == kalm, (episode["goal_id"], babyai, kalm)
        ended["success"] += kalm[-1]
        ended["failure"] += infos[-1]["failure"]
    if noise == 0.2:
        assert ended["success"] >= 0.9 * len(bot_episodes[level, noise])
    else:
        assert ended["failure"] > 0  # random actions pick up and open the wrong things


@pytest.mark.parametrize("level", LEVELS)
def test_outcome_and_rewards_from_observations_alone_match_the_env(babyai, bot_episodes, level):
    for episode in bot_episodes[level, 0.2] + bot_episodes[level, 1.0]:
        observations, infos = episode["observations"], episode["infos"]
        outcome = babyai.outcome(episode["goal_id"], level, observations)
        assert outcome.length == len(infos)
        assert outcome.success == infos[-1]["success"] and outcome.failure == infos[-1]["failure"]
        np.testing.assert_allclose(
            babyai.rewards(episode["goal_id"], observations), episode["rewards"], atol=1e-6
        )
        if outcome.success:
            horizon = babyai.protocol(level).horizon
            assert episode["rewards"][-1] == pytest.approx(1 - 0.9 * len(infos) / horizon)
        assert episode["rewards"][:-1].sum() == 0


@pytest.mark.parametrize("level", LEVELS)
def test_an_episodes_end_is_found_from_its_first_and_latest_state(babyai, bot_episodes, level):
    """Imagination stops a rollout where the judges, reading its first and latest state, say it ended: that
    must be the step the whole history ends it."""
    for episode in bot_episodes[level, 0.2] + bot_episodes[level, 1.0]:
        observations, goal_id = episode["observations"], episode["goal_id"]
        ends = [
            bool(
                babyai.success(goal_id, observations[[0, t]])[0]
                or babyai.failure(goal_id, observations[[0, t]])[0]
            )
            for t in range(1, len(observations))
        ]
        outcome = babyai.outcome(goal_id, level, observations)
        expected = [False] * (outcome.length - 1) + [outcome.terminated]
        assert ends == expected


def _layout(agent, objects, doors=((Obj("red", "door"), 0, 3), (Obj("green", "door"), 6, 3))) -> Layout:
    return Layout(
        agent,
        tuple(Thing(obj, x, y, state) for obj, x, y, state in objects),
        tuple(Thing(obj, x, y) for obj, x, y in doors),
    )


RED_BALL, BLUE_KEY, GREY_BOX, GREEN_KEY = (
    Obj("red", "ball"),
    Obj("blue", "key"),
    Obj("grey", "box"),
    Obj("green", "key"),
)


def test_go_to_needs_the_object_in_front_of_the_agent():
    facing = _layout(
        (2, 2, 0), [(RED_BALL, 3, 2, 0), (BLUE_KEY, 2, 3, 0), (GREY_BOX, 5, 5, 0), (GREEN_KEY, 1, 1, 0)]
    )
    beside = _layout(
        (2, 2, 3), [(RED_BALL, 3, 2, 0), (BLUE_KEY, 2, 3, 0), (GREY_BOX, 5, 5, 0), (GREEN_KEY, 1, 1, 0)]
    )
    states = np.stack([encode(beside), encode(facing)])
    assert judges.holds(GoTo(RED_BALL), states, states[0]).tolist() == [False, True]
    assert judges.holds(GoTo(Obj("red", "door")), states, states[0]).tolist() == [False, False]


def test_pick_up_fails_on_another_object_and_put_next_needs_a_drop_beside_the_fixed_one():
    start = _layout(
        (2, 2, 0), [(RED_BALL, 3, 2, 0), (BLUE_KEY, 5, 1, 0), (GREY_BOX, 5, 5, 0), (GREEN_KEY, 1, 1, 0)]
    )
    wrong = _layout(
        (2, 2, 0), [(RED_BALL, 3, 2, 0), (BLUE_KEY, 5, 1, 0), (GREY_BOX, 5, 5, 0), (GREEN_KEY, 2, 2, 1)]
    )
    carried = _layout(
        (4, 2, 0), [(RED_BALL, 4, 2, 1), (BLUE_KEY, 5, 1, 0), (GREY_BOX, 5, 5, 0), (GREEN_KEY, 1, 1, 0)]
    )
    dropped = _layout(
        (4, 2, 3), [(RED_BALL, 4, 1, 0), (BLUE_KEY, 5, 1, 0), (GREY_BOX, 5, 5, 0), (GREEN_KEY, 1, 1, 0)]
    )
    states = np.stack([encode(start), encode(wrong), encode(carried), encode(dropped)])
    assert judges.holds(PickUp(RED_BALL), states, states[0]).tolist() == [False, False, True, False]
    assert judges.fails(PickUp(RED_BALL), states).tolist() == [False, True, False, False]
    put = PutNext(RED_BALL, BLUE_KEY)
    assert judges.holds(put, states, states[0]).tolist() == [False, False, False, True]
    assert judges.fails(put, states).tolist() == [False, True, False, False]
    # the fixed object brought next to the unmoved one does not count
    assert not judges.holds(PutNext(BLUE_KEY, RED_BALL), states[3:], states[0])[0]


def test_a_sequence_succeeds_in_order_and_fails_out_of_order():
    face_ball = encode(
        _layout(
            (2, 2, 0), [(RED_BALL, 3, 2, 0), (BLUE_KEY, 2, 4, 0), (GREY_BOX, 5, 5, 0), (GREEN_KEY, 1, 1, 0)]
        )
    )
    face_key = encode(
        _layout(
            (2, 3, 1), [(RED_BALL, 3, 2, 0), (BLUE_KEY, 2, 4, 0), (GREY_BOX, 5, 5, 0), (GREEN_KEY, 1, 1, 0)]
        )
    )
    elsewhere = encode(
        _layout(
            (4, 4, 0), [(RED_BALL, 3, 2, 0), (BLUE_KEY, 2, 4, 0), (GREY_BOX, 5, 5, 0), (GREEN_KEY, 1, 1, 0)]
        )
    )
    then = parse_spec("then(goto-red-ball,goto-blue-key)")
    after = parse_spec("after(goto-red-ball,goto-blue-key)")
    assert (
        isinstance(then, Sequence)
        and then.order == (GoTo(RED_BALL), GoTo(BLUE_KEY))
        and after.order[0] == GoTo(BLUE_KEY)
    )
    in_order = np.stack([face_ball, elsewhere, face_key])
    reversed_ = np.stack([face_key, elsewhere, face_ball])
    assert judges.success(then, in_order, elsewhere).tolist() == [False, False, True]
    assert judges.failure(then, in_order, elsewhere).tolist() == [False, False, False]
    assert judges.failure(then, reversed_, elsewhere).tolist() == [True, False, False]
    assert judges.success(after, reversed_, elsewhere).tolist() == [False, False, True]
