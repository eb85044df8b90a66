"""The imagination stage on a tiny grounded model: deterministic plan, resume, sharding."""

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch

from kalm.errors import ConfigError
from kalm.imagine.plan import batches, plan_items, shard
from kalm.imagine.run import ImagineModule, batch_path, decode_batch, merge, pending_batches, write_batch
from kalm.imagine.settings import ImagineSettings
from kalm.imagine.stage import imaginary_repo_id, imagine, run_dir

SETTINGS = ImagineSettings(
    levels=["easy", "hard"],
    per_goal=1,
    batch_size=16,
    horizon=6,
    keep_implausible=True,
    greedy=False,
    temperature=1.5,
)


@pytest.fixture(scope="module")
def model():
    from kalm.grounding.model import GroundedLM, GroundingConfig

    torch.manual_seed(0)
    grounded = GroundedLM(
        GroundingConfig(backbone="tiny-llama", obs_dim=10, action_dim=40, discrete=True, finetune="full")
    )
    # scale the state head down so decoded states stay near the data (a plausible mix of verdicts)
    with torch.no_grad():
        grounded.codec.state_head.weight.mul_(0.05)
    return grounded.eval()


def test_plan_covers_every_goal_with_its_own_seed(clevr):
    items = plan_items(clevr, ["easy", "hard"], per_goal=2, seed=0)
    assert len(items) == 2 * (len(clevr.goals("easy")) + len(clevr.goals("hard")))
    assert len({item.reset_seed for item in items}) == len(items)
    assert [item.index for item in items] == list(range(len(items)))
    assert items == plan_items(clevr, ["easy", "hard"], per_goal=2, seed=0)
    first_goal = [item for item in items if item.goal_id == items[0].goal_id]
    assert first_goal[0].sentence != first_goal[1].sentence  # cycles through phrasings
    assert shard(7, 1, 3) == [1, 4]


def test_per_goal_counts_per_level(clevr):
    items = plan_items(clevr, ["easy", "hard"], per_goal={"easy": 3, "hard": 1}, seed=0)
    easy = [item for item in items if item.level == "easy"]
    assert len(easy) == 3 * len(clevr.goals("easy")) and len(items) - len(easy) == len(clevr.goals("hard"))
    # a goal's first rollouts do not depend on how many more it gets
    uniform = plan_items(clevr, ["easy", "hard"], per_goal=1, seed=0)
    assert [item for item in items if item.level == "hard"] == [
        replace(item, index=item.index + 2 * len(clevr.goals("easy")))
        for item in uniform
        if item.level == "hard"
    ]
    assert ImagineSettings(levels=["easy", "hard"], per_goal={"easy": 3, "hard": 1}).goal_counts() == {
        "easy": 3,
        "hard": 1,
    }
    assert ImagineSettings(levels=["easy"], per_goal={"easy": 3, "hard": 1}).goal_counts() == {"easy": 3}
    with pytest.raises(ConfigError, match=r"per_goal names levels \['easy'\]; expected a count for each"):
        ImagineSettings(levels=["easy", "hard"], per_goal={"easy": 3})
    with pytest.raises(ConfigError, match="must be positive"):
        ImagineSettings(levels=["easy"], per_goal={"easy": 0})


def test_temperature_per_level():
    settings = ImagineSettings(
        levels=["rephrase", "hard"], temperature={"rephrase": 0.7, "hard": 1.0, "easy": 2.0}
    )
    assert settings.level_temperatures() == {"rephrase": 0.7, "hard": 1.0}
    assert ImagineSettings(levels=["easy"], temperature=0.5).level_temperatures() == {"easy": 0.5}
    with pytest.raises(ConfigError, match="a value for each of the imagined levels"):
        ImagineSettings(levels=["rephrase", "hard"], temperature={"rephrase": 0.7})
    with pytest.raises(ConfigError, match="must be positive"):
        ImagineSettings(levels=["easy"], temperature={"easy": 0.0})


def test_decoding_with_one_temperature_per_level_equals_it_for_all(model, clevr):
    plan = plan_items(clevr, ["rephrase", "easy"], per_goal=1, seed=0)
    items = [item for item in plan if item.level == "rephrase"][:8] + [
        item for item in plan if item.level == "easy"
    ][:8]

    def decode(temperature):
        rows, _ = decode_batch(
            model,
            clevr,
            items,
            0,
            horizon=4,
            greedy=False,
            temperature=temperature,
            seed=0,
            keep_implausible=True,
        )
        return [row["actions"].tolist() for row in rows]

    assert decode({"rephrase": 1.5, "easy": 1.5}) == decode(1.5)
    assert decode({"rephrase": 1.5, "easy": 1e-4}) != decode(1.5)


def run_shard(model, suite, work_dir, rank, world):
    plan = batches(plan_items(suite, SETTINGS.levels, per_goal=1, seed=0), SETTINGS.batch_size)
    for index in shard(len(plan), rank, world):
        rows, verdicts = decode_batch(
            model,
            suite,
            plan[index],
            index,
            horizon=6,
            greedy=False,
            temperature=1.5,
            seed=0,
            keep_implausible=True,
        )
        write_batch(work_dir, index, rows, verdicts, suite)
    return len(plan)


def test_sharded_equals_unsharded(model, clevr, tmp_path):
    """The plan's shards merge to the one-process dataset (the ``Trainer.predict`` path that runs them on two
    processes: ``tests/pipeline/test_run_distributed.py``)."""
    count = run_shard(model, clevr, tmp_path / "one", 0, 1)
    for rank in (1, 0):
        run_shard(model, clevr, tmp_path / "two", rank, 2)
    single, single_stats = merge(tmp_path / "one", count, keep_implausible=True)
    sharded, sharded_stats = merge(tmp_path / "two", count, keep_implausible=True)
    assert single_stats.to_dict() == sharded_stats.to_dict()
    for a, b in zip(single.with_format("numpy"), sharded.with_format("numpy"), strict=True):
        np.testing.assert_array_equal(a["observations"], b["observations"])
        np.testing.assert_array_equal(a["actions"], b["actions"])
        assert a["episode_id"] == b["episode_id"]


def test_implausible_rollouts_stop_early_with_the_same_verdicts(model, clevr):
    model = copy.deepcopy(model)
    with torch.no_grad():  # the first ball drifts right, off the table for some initial states
        model.codec.state_head.weight.zero_()
        model.codec.state_head.bias.zero_()
        model.codec.state_head.bias[0] = 0.04
    items = plan_items(clevr, ["rephrase"], per_goal=1, seed=0)[:16]
    full, full_verdicts = decode_batch(
        model, clevr, items, 0, horizon=12, greedy=True, temperature=1.0, seed=0, keep_implausible=True
    )
    early, early_verdicts = decode_batch(
        model, clevr, items, 0, horizon=12, greedy=True, temperature=1.0, seed=0, keep_implausible=False
    )
    assert early_verdicts == full_verdicts and len(set(full_verdicts)) > 1  # the fixture makes a mix
    for a, b, judged in zip(full, early, full_verdicts, strict=True):
        if judged == "plausible":
            np.testing.assert_allclose(a["observations"], b["observations"], atol=1e-5)
            np.testing.assert_array_equal(a["actions"], b["actions"])
        else:  # cut at the first implausible state
            assert clevr.implausibility(b["observations"][:-1]) is None
            np.testing.assert_allclose(a["observations"][: b["length"] + 1], b["observations"], atol=1e-5)


@pytest.mark.parametrize("project_states", [None, False, True])
def test_clevr_drops_rollouts_through_a_wall_unless_told_to_hold_the_balls(model, clevr, project_states):
    model = copy.deepcopy(model)
    with torch.no_grad():  # as above: the first ball drifts right, off the table for some initial states
        model.codec.state_head.weight.zero_()
        model.codec.state_head.bias.zero_()
        model.codec.state_head.bias[0] = 0.04
    items = plan_items(clevr, ["rephrase"], per_goal=1, seed=0)[:16]
    rows, verdicts = decode_batch(
        model,
        clevr,
        items,
        0,
        horizon=12,
        greedy=True,
        temperature=1.0,
        seed=0,
        keep_implausible=True,
        project_states=project_states,
    )
    reached = max(abs(row["observations"][:, 0]).max() for row in rows)
    if project_states:  # the wall holds the ball: every rollout is plausible and ends against it
        assert set(verdicts) == {"plausible"} and reached <= 0.45 + 1e-6
    else:  # CLEVR's choice (None) and False: decoded as the model says, judged, dropped
        assert "out_of_workspace" in verdicts and reached > 0.47


def test_resume_finishes_without_duplicates(model, clevr, tmp_path):
    work_dir = run_dir(tmp_path, "tiny@local", SETTINGS)
    plan = batches(plan_items(clevr, SETTINGS.levels, per_goal=1, seed=0), SETTINGS.batch_size)
    # a "killed" run: two batches done, a third left half-written
    ImagineModule(
        model, clevr, plan, work_dir, horizon=6, greedy=False, temperature=1.5, seed=0, keep_implausible=True
    ).predict_step(torch.tensor([0, 2]), 0)
    batch_path(work_dir, 3).with_suffix(".1234.partial").write_bytes(b"half")
    done_before = {index: batch_path(work_dir, index).stat().st_mtime_ns for index in (0, 2)}
    assert pending_batches(work_dir, len(plan)) == [1, *range(3, len(plan))]
    result = imagine(model, clevr, SETTINGS, work_dir=work_dir, progress=False)
    assert {index: batch_path(work_dir, index).stat().st_mtime_ns for index in (0, 2)} == done_before
    ids = result.dataset["episode_id"]
    assert sorted(ids) == list(range(sum(len(batch) for batch in plan))) and len(set(ids)) == len(ids)
    assert set(result.dataset["source"]) == {"imaginary"} and set(result.dataset["level"]) == {"easy", "hard"}
    assert sum(sum(c.values()) for c in result.stats.to_dict().values()) == len(ids)


def test_implausible_rollouts_are_dropped_by_default(model, clevr, tmp_path):
    work_dir = tmp_path / "run"
    run_shard(model, clevr, work_dir, 0, 1)
    count = len(batches(plan_items(clevr, SETTINGS.levels, per_goal=1, seed=0), SETTINGS.batch_size))
    kept, stats = merge(work_dir, count, keep_implausible=False)
    plausible = sum(level.get("plausible", 0) for level in stats.to_dict().values())
    assert len(kept) == plausible
    assert all(clevr.implausibility(row["observations"]) is None for row in kept.with_format("numpy"))


def test_repo_naming():
    assert imaginary_repo_id("kalm", "clevr", "kalm/kalm-clevr-grounded-smollm2-135m") == (
        "kalm/kalm-clevr-imaginary-smollm2-135m"
    )
    assert run_dir("x", "a@1", SETTINGS) == run_dir("x", "a@1", SETTINGS) != run_dir("x", "a@2", SETTINGS)


def test_a_run_that_keeps_nothing_fails_clearly(clevr, tmp_path):
    from kalm.errors import KalmError
    from kalm.grounding.model import GroundedLM, GroundingConfig

    torch.manual_seed(0)
    wild = GroundedLM(
        GroundingConfig(backbone="tiny-llama", obs_dim=10, action_dim=40, discrete=True, finetune="full")
    ).eval()
    with torch.no_grad():
        wild.codec.state_head.bias.fill_(50.0)  # every imagined state far off the table
    settings = ImagineSettings(levels=["easy"], per_goal=1, batch_size=32, horizon=2)
    with pytest.raises(KalmError, match=r"imagination kept none of its 20 rollouts .*out_of_workspace"):
        imagine(wild, clevr, settings, work_dir=tmp_path / "wild", progress=False)
