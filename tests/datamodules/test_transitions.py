"""TransitionDataModule: episode -> transition conversion, terminals vs truncations, mixing ratio, errors."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch

from kalm.data.transitions import episodes_to_transitions
from datamodules.transitions import DatasetSource, TransitionDataModule
from kalm.data import RolloutSpec, rollouts_to_dataset, write_rollouts
from kalm.errors import ConfigError, DatasetSchemaError

SPEC = RolloutSpec(obs_dim=2, action_dim=4, discrete=True, horizon=3)


def episode(
    episode_id: int,
    length: int,
    *,
    terminated: bool,
    source: str = "real",
    level: str = "train",
    instruction: str = "push the red ball",
) -> dict:
    """An episode whose observation ``t`` is ``[100 * id + t, -t]`` and action ``t`` is ``t``."""
    observations = np.stack([[100.0 * episode_id + t, -t] for t in range(length + 1)]).astype(np.float32)
    return {
        "episode_id": episode_id,
        "env": "toy",
        "source": source,
        "level": level,
        "goal_id": "g",
        "instruction": instruction,
        "seed": 0,
        "length": length,
        "observations": observations,
        "actions": list(range(length)),
        "rewards": [float(episode_id)] * length,
        "terminated": terminated,
        "truncated": not terminated,
        "success": terminated,
    }


@pytest.fixture(scope="module")
def embedding_cache(request: pytest.FixtureRequest) -> str:
    return str(request.config.cache.mkdir("kalm-cache") / "goal_embeddings")  # shared with tests/rl


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def folder(tmp_path, name: str, rows: list[dict], spec: RolloutSpec = SPEC):
    return str(write_rollouts(rollouts_to_dataset(rows, spec), tmp_path / name, env="toy", spec=spec))


def test_transitions_align_observations_actions_and_next_observations():
    dataset = rollouts_to_dataset([episode(1, 3, terminated=False), episode(2, 2, terminated=True)], SPEC)
    arrays = episodes_to_transitions(dataset, SPEC)
    assert len(arrays) == 5 and arrays.states.shape == (7, 2)
    np.testing.assert_array_equal(arrays.states[arrays.obs_index][:, 0], [100, 101, 102, 200, 201])
    np.testing.assert_array_equal(arrays.states[arrays.obs_index + 1][:, 0], [101, 102, 103, 201, 202])
    np.testing.assert_array_equal(arrays.actions, [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(arrays.rewards, [1, 1, 1, 2, 2])


def test_successful_only_keeps_the_episodes_that_reach_their_goal():
    dataset = rollouts_to_dataset([episode(1, 3, terminated=False), episode(2, 2, terminated=True)], SPEC)
    arrays = episodes_to_transitions(dataset, SPEC, successful_only=True)
    np.testing.assert_array_equal(arrays.states[arrays.obs_index][:, 0], [200, 201])
    failed = rollouts_to_dataset([episode(1, 3, terminated=False)], SPEC)
    with pytest.raises(DatasetSchemaError, match="no episodes that succeed"):
        episodes_to_transitions(failed, SPEC, successful_only=True)


def test_only_the_last_step_of_a_terminated_episode_is_terminal():
    dataset = rollouts_to_dataset([episode(1, 3, terminated=False), episode(2, 2, terminated=True)], SPEC)
    arrays = episodes_to_transitions(dataset, SPEC)
    np.testing.assert_array_equal(arrays.done, [False, False, True, False, True])  # both episodes end
    np.testing.assert_array_equal(
        arrays.terminated, [False, False, False, False, True]
    )  # a time limit is not


def test_batches_carry_torchrl_keys_with_the_goal_embedding_in_the_observation(tmp_path, embedding_cache):
    real = folder(
        tmp_path,
        "real",
        [
            episode(1, 3, terminated=False, instruction="push the red ball left"),
            episode(2, 2, terminated=True, instruction="push the blue ball right"),
        ],
    )
    dm = TransitionDataModule(real=real, batch_size=64, embedding_cache=embedding_cache)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    goal = dm.encoder.encode(["push the red ball left", "push the blue ball right"])
    assert batch.batch_size == torch.Size([64]) and batch["observation"].shape == (64, 2 + dm.goal_dim)
    assert batch["next", "reward"].shape == (64, 1) and batch["next", "terminated"].dtype == torch.bool
    first = batch["observation"][:, 0] // 100  # the episode id
    expected_goal = torch.from_numpy(goal)[(first - 1).long()]
    torch.testing.assert_close(batch["observation"][:, 2:], expected_goal)
    torch.testing.assert_close(batch["next", "observation"][:, 2:], expected_goal)
    torch.testing.assert_close(batch["next", "observation"][:, 0], batch["observation"][:, 0] + 1)
    terminal = batch["next", "terminated"].squeeze(-1)
    assert torch.equal(terminal, batch["observation"][:, 0] == 201)  # only episode 2's last step


def test_every_batch_holds_the_configured_real_to_imaginary_ratio(tmp_path, embedding_cache):
    real = folder(tmp_path, "real", [episode(i, 3, terminated=True) for i in range(1, 4)])
    imaginary = folder(
        tmp_path,
        "imag",
        [episode(i, 2, terminated=True, source="imaginary", level="easy") for i in range(5, 25)],
    )
    for fraction, expected_real in ((0.5, 50), (0.25, 25), (1.0, 100)):
        dm = TransitionDataModule(
            real=real,
            imaginary=[imaginary],
            real_fraction=fraction,
            batch_size=100,
            steps_per_epoch=5,
            embedding_cache=embedding_cache,
        )
        dm.setup("fit")
        for batch in dm.train_dataloader():
            imaginary_rows = batch["imaginary"]
            assert int((~imaginary_rows).sum()) == expected_real
            assert torch.all(
                (batch["observation"][:, 0] < 500) == ~imaginary_rows
            )  # rows come from their pool
    # without imaginary data every row is real, whatever the fraction
    dm = TransitionDataModule(real=real, real_fraction=0.5, batch_size=100, embedding_cache=embedding_cache)
    dm.setup("fit")
    assert not next(iter(dm.train_dataloader()))["imaginary"].any()


def test_imaginary_levels_select_rollouts(tmp_path, embedding_cache):
    real = folder(tmp_path, "real", [episode(1, 3, terminated=True)])
    rows = [
        episode(5, 2, terminated=True, source="imaginary", level="easy"),
        episode(6, 2, terminated=True, source="imaginary", level="hard"),
    ]
    dm = TransitionDataModule(
        real=real,
        imaginary=[folder(tmp_path, "imag", rows)],
        imaginary_levels=["hard"],
        embedding_cache=embedding_cache,
    )
    dm.setup("fit")
    states = dm.pools["imaginary"].states[dm.pools["imaginary"].obs_index]
    assert set(states[:, 0].tolist()) == {600.0, 601.0}


def test_imaginary_mix_levels_gives_every_level_the_same_share_whatever_its_size(tmp_path, embedding_cache):
    real = folder(tmp_path, "real", [episode(1, 3, terminated=True)])
    # easy: 10 one-step rollouts (ids 10-19); rephrase: 10 three-step ones (ids 50-59): 10 vs 30 transitions
    rows = [episode(i, 1, terminated=True, source="imaginary", level="easy") for i in range(10, 20)]
    rows += [episode(i, 3, terminated=True, source="imaginary", level="rephrase") for i in range(50, 60)]
    imaginary = folder(tmp_path, "imag", rows)

    def easy_share(mix: str, seed: int = 0) -> tuple[float, set[float]]:
        dm = TransitionDataModule(
            real=real,
            imaginary=[imaginary],
            imaginary_mix=mix,
            real_fraction=0.5,
            batch_size=400,
            steps_per_epoch=10,
            seed=seed,
            embedding_cache=embedding_cache,
        )
        dm.setup("fit")
        ids = torch.cat([b["observation"][b["imaginary"], 0] for b in dm.train_dataloader()]) // 100
        return float((ids < 50).float().mean()), set(ids.tolist())

    by_transition, seen = easy_share("transitions")
    assert by_transition == pytest.approx(0.25, abs=0.03)  # 10 of 40 transitions
    by_level, seen_by_level = easy_share("levels")
    assert by_level == pytest.approx(0.5, abs=0.03)
    assert seen == seen_by_level == set(range(10, 20)) | set(range(50, 60))  # every rollout still drawn
    assert easy_share("levels", seed=3) == easy_share("levels", seed=3)
    assert easy_share("levels", seed=3) != easy_share("levels", seed=4)
    with pytest.raises(
        ConfigError, match=r"imaginary_mix='episodes' is invalid; expected one of \('transitions'"
    ):
        TransitionDataModule(real=real, imaginary_mix="episodes")


def test_sampling_is_seeded_and_resumes_from_its_state(tmp_path, embedding_cache):
    real = folder(tmp_path, "real", [episode(i, 3, terminated=True) for i in range(1, 9)])
    dm = TransitionDataModule(
        real=real, batch_size=16, steps_per_epoch=4, seed=7, embedding_cache=embedding_cache
    )
    dm.setup("fit")
    stream = iter(dm.train_dataloader())
    next(stream)
    state = dm.state_dict()
    expected = [batch["observation"] for batch in stream]
    resumed = TransitionDataModule(
        real=real, batch_size=16, steps_per_epoch=4, seed=7, embedding_cache=embedding_cache
    )
    resumed.setup("fit")
    resumed.load_state_dict(state)
    again = [batch["observation"] for batch in resumed.train_dataloader()][:3]
    for a, b in zip(expected, again, strict=True):
        torch.testing.assert_close(a, b)


def test_bad_dataset_schema_gives_a_clear_error():
    rows = [episode(1, 2, terminated=True)]
    features = rollouts_to_dataset(rows, SPEC).features.copy()
    features["observations"] = datasets.Array2D(shape=(None, 2), dtype="float64")
    wrong_dtype = datasets.Dataset.from_list(rows, features=features)
    with pytest.raises(
        DatasetSchemaError,
        match=r"column 'observations' is .*; expected Array2D\(shape=\(None, 2\), " r"dtype=float32\)",
    ):
        episodes_to_transitions(wrong_dtype, SPEC, where="my-data")
    missing = rollouts_to_dataset(rows, SPEC).remove_columns("terminated")
    with pytest.raises(DatasetSchemaError, match="my-data: rollout dataset has no column 'terminated'"):
        episodes_to_transitions(missing, SPEC, where="my-data")


def test_bad_inputs_name_the_problem(tmp_path):
    (tmp_path / "not-a-dataset").mkdir()
    with pytest.raises(DatasetSchemaError, match="is not a kalm rollout dataset: meta/info.json is missing"):
        TransitionDataModule(real=str(tmp_path / "not-a-dataset")).setup("fit")
    with pytest.raises(
        ConfigError, match=r"dataset '.*/missing/folder': no such folder \(collect it first\)"
    ):
        TransitionDataModule(real=str(tmp_path / "missing" / "folder")).setup("fit")
    with pytest.raises(
        ConfigError, match="neither an existing folder nor a Hub repo id of the form namespace/name"
    ):
        TransitionDataModule(real="no-such-namespace-x/a/b").setup("fit")
    with pytest.raises(ConfigError, match="real_fraction=1.5 is invalid"):
        TransitionDataModule(real=DatasetSource("x/y"), real_fraction=1.5)
    other = RolloutSpec(obs_dim=3, action_dim=4, discrete=True, horizon=3)
    real = folder(tmp_path, "real", [episode(1, 2, terminated=True)])
    bad_rows = [
        {**episode(2, 2, terminated=True, source="imaginary"), "observations": np.zeros((3, 3), np.float32)}
    ]
    imaginary = folder(tmp_path, "imag", bad_rows, other)
    with pytest.raises(DatasetSchemaError, match="imag: env 'toy' with .*obs_dim=3.* does not match"):
        TransitionDataModule(real=real, imaginary=[imaginary]).setup("fit")


def test_goal_standardization_uses_the_real_sentences_and_travels_with_the_encoder(tmp_path, embedding_cache):
    real_sentences = ["push the red ball left", "push the blue ball right", "move the green ball"]
    real = folder(
        tmp_path,
        "real",
        [episode(i + 1, 2, terminated=True, instruction=s) for i, s in enumerate(real_sentences)],
    )
    imaginary = folder(
        tmp_path,
        "imag",
        [episode(9, 2, terminated=True, source="imaginary", level="easy", instruction="an imagined goal")],
    )
    common = dict(
        real=real, imaginary=[imaginary], goal_encoder="tiny-llama:layer1", embedding_cache=embedding_cache
    )
    dm = TransitionDataModule(**common)  # auto: a causal-LM encoder is standardized
    dm.setup("fit")
    real_goals = dm.encoder.encode(real_sentences)
    np.testing.assert_allclose(real_goals.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(real_goals.std(0), 1 / np.sqrt(dm.goal_dim), rtol=1e-3)  # expected norm 1
    raw = TransitionDataModule(**common, goal_standardize=False)
    raw.setup("fit")
    assert raw.encoder.standardization is None
    expected = dm.encoder.standardization.apply(raw.encoder.encode(["an imagined goal"]))  # real statistics
    np.testing.assert_allclose(dm.encoder.encode(["an imagined goal"]), expected, atol=1e-5)
    batch = next(iter(dm.train_dataloader()))
    rows = (batch["observation"][:, 0] // 100).long()  # the episode id
    goals = torch.from_numpy(dm.encoder.encode([*real_sentences, "an imagined goal"]))
    torch.testing.assert_close(batch["observation"][:, 2:], goals[torch.where(rows == 9, 3, rows - 1)])
    assert TransitionDataModule(real=real, embedding_cache=embedding_cache).goal_standardize is False
    with pytest.raises(ConfigError, match="goal_standardize='yes' is invalid"):
        TransitionDataModule(real=real, goal_standardize="yes")
