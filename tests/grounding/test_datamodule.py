import datasets
import numpy as np
import pytest

from datamodules.rollout_goal import RolloutGoalDataModule, is_validation
from kalm.data import read_rollouts
from kalm.errors import ConfigError, DatasetSchemaError
from kalm.grounding.prompts import Task


def make(dataset, **kwargs):
    module = RolloutGoalDataModule(dataset=str(dataset), backbone="tiny-llama", batch_size=8, **kwargs)
    module.setup("fit")
    return module


def test_split_is_by_episode_stable_and_disjoint(clevr_real):
    module = make(clevr_real, val_fraction=0.25)
    train = [int(row["episode_id"]) for row in module.episodes(validation=False)]
    val = [int(row["episode_id"]) for row in module.episodes(validation=True)]
    assert not set(train) & set(val)
    assert sorted(train + val) == list(range(120))
    assert 0.1 < len(val) / 120 < 0.4
    assert val == [
        int(row["episode_id"]) for row in make(clevr_real, val_fraction=0.25).episodes(validation=True)
    ]
    assert all(is_validation(episode, 0.25) for episode in val)


def test_every_example_comes_from_its_own_split(clevr_real):
    module = make(clevr_real, tasks_per_episode=3, goal_tasks_need_success=False)
    batches = list(module.val_dataloader())
    validation_episodes = sum(1 for _ in module.episodes(validation=True))
    assert sum(len(batch) for batch in batches) == 4 * validation_episodes  # all four tasks per episode
    train = list(module.train_dataloader())
    assert sum(len(batch) for batch in train) == 3 * (120 - validation_episodes)


def test_episodes_that_miss_their_goal_teach_only_dynamics(clevr_real):
    module = make(clevr_real)
    rows = list(module.episodes(validation=True))
    failed = [row for row in rows if not row["success"]]
    assert failed, "the fixture's exploration episodes should include failures"
    rng = np.random.default_rng(0)
    assert all(module.tasks_for(row, rng, validation=True) == [Task.DYNAMICS] for row in failed)
    assert module.tasks_for(next(row for row in rows if row["success"]), rng, validation=True) == list(Task)
    batches = list(module.val_dataloader())
    assert sum(len(batch) for batch in batches) == 4 * (len(rows) - len(failed)) + len(failed)


def test_task_weights_shape_the_mixture(clevr_real):
    module = make(clevr_real, task_weights=[1.0, 0.0, 0.0, 1.0], tasks_per_episode=4)
    tasks = {int(task) for batch in module.train_dataloader() for task in batch.task}
    assert tasks == {Task.GOAL_TO_ROLLOUT, Task.ROLLOUT_TO_GOAL}


def test_canonical_explanations_always_target_the_goals_first_sentence(clevr_real):
    from kalm.envs import get_suite

    suite = get_suite("clevr")
    row = next(row for row in make(clevr_real).episodes(validation=False) if row["success"])
    goal = suite.goal("train", str(row["goal_id"]))
    for phrasing, expected in (("canonical", {goal.sentences[0]}), ("any", set(goal.sentences))):
        module = make(clevr_real, explanation_phrasing=phrasing)
        rng = np.random.default_rng(0)
        texts = {
            module.prompts.tokenizer.decode(module.encode(row, Task.ROLLOUT_TO_GOAL, rng).input_ids)
            for _ in range(40)
        }
        said = {sentence for sentence in goal.sentences if any(sentence in text for text in texts)}
        assert said <= expected and (len(said) == 1 if phrasing == "canonical" else len(said) > 5)
    with pytest.raises(ConfigError, match="explanation_phrasing='fixed'"):
        RolloutGoalDataModule(dataset=str(clevr_real), explanation_phrasing="fixed")


def test_state_statistics_come_from_training_episodes(clevr_real):
    stats = make(clevr_real).state_stats()
    assert stats["state_mean"].shape == (10,) and (stats["state_std"] > 0.1).all()


def test_bad_settings_and_schema_are_rejected(clevr_real, tmp_path):
    with pytest.raises(ConfigError, match="task_weights"):
        RolloutGoalDataModule(dataset=str(clevr_real), task_weights=[1.0, 1.0])
    with pytest.raises(ConfigError, match="val_fraction"):
        RolloutGoalDataModule(dataset=str(clevr_real), val_fraction=1.0)
    float64 = read_rollouts(clevr_real).cast_column(
        "observations", datasets.Array2D(shape=(None, 10), dtype="float64")
    )
    with pytest.raises(
        DatasetSchemaError, match="column 'observations' is Array2D.*float64.*expected.*float32"
    ):
        make(_folder_like(clevr_real, float64, tmp_path / "float64"))
    missing = read_rollouts(clevr_real).remove_columns("rewards")
    with pytest.raises(DatasetSchemaError, match="no column 'rewards'; expected List"):
        make(_folder_like(clevr_real, missing, tmp_path / "missing"))


def _folder_like(original, dataset, folder):
    """A dataset folder with ``original``'s info.json but ``dataset``'s (broken) parquet rows."""
    (folder / "data").mkdir(parents=True)
    dataset.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    (folder / "meta").mkdir()
    (folder / "meta" / "info.json").write_text((original / "meta" / "info.json").read_text())
    return folder
