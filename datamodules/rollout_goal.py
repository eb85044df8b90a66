"""RolloutGoalDataModule: streams rollout-goal pairs and turns them into grounding-task batches.

Episodes stream from a rollout dataset (a Hub dataset repo at a revision, or a local dataset folder) with
``datasets`` streaming, and examples are batched with others of similar length. Each episode goes wholly to
training or to validation, decided by a stable hash of its ``episode_id`` (the reference split after expanding
episodes into tasks, so one rollout could be trained on under one task and validated under another). Every
training episode yields ``tasks_per_episode`` examples whose tasks are drawn from ``task_weights``; each
example phrases the goal with one of its training sentences, drawn at random. Episodes that never reach their
goal (exploration data) are not rollouts of that goal: they teach only the dynamics task.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from kalm.data import check_features
from kalm.envs import get_suite
from kalm.errors import ConfigError, UnknownNameError
from kalm.backbones import load_tokenizer
from kalm.grounding.batch import GroundingBatch, collate
from kalm.grounding.prompts import PromptEncoder, Task

DEFAULT_TASK_WEIGHTS = (3.0, 1.0, 1.0, 1.0)
"""goal -> rollout, the only task with action targets, drawn 3x as often as each of the others."""


def is_validation(episode_id: int, fraction: float) -> bool:
    """Stable, streaming-friendly split by episode: the same episode always lands on the same side."""
    return zlib.crc32(str(int(episode_id)).encode()) % 10_000 < fraction * 10_000


class _EpisodeBatches(IterableDataset[list[Any]]):
    """Iterates episodes of one split and yields lists of encoded examples, one list per batch.

    Examples are bucketed by length: ``bucket`` batches' worth are gathered, sorted by token count, cut
    into batches, and the batches are yielded in random order. Short and long rollouts then share few
    batches, so little compute goes to padding (CLEVR rollouts range from 1 to 50 steps).

    Under DDP every rank builds the same sequence of training batches (same seeds) and takes one batch of each
    round of ``world_size`` consecutive ones: rank ``r`` trains on batches ``r, r + n, ...`` of the
    one-process stream, so a step of ``n`` processes sees ``n`` distinct batches (the global batch is
    ``n * batch_size``) and every rank yields as many batches per pass. Validation batches are not split:
    every rank validates on the whole held-out split, and the logged values are those of one process.
    """

    def __init__(
        self, module: RolloutGoalDataModule, *, validation: bool, shard: tuple[int, int] | None = None
    ) -> None:
        super().__init__()
        self.module, self.validation, self.shard = module, validation, shard  # shard: (rank, world size)
        self.epoch = 0

    def __iter__(self) -> Iterator[list[Any]]:
        rank, world = (0, 1) if self.validation else self.shard or self.module.shard()
        if world == 1:
            yield from self._stream()
            return
        turn: list[
            list[Any]
        ] = []  # each rank takes its batch of every round of ``world`` consecutive batches;
        for batch in self._stream():  # an incomplete last round is dropped, so every rank yields as many
            turn.append(batch)
            if len(turn) == world:
                yield turn[rank]
                turn = []

    def _stream(self) -> Iterator[list[Any]]:
        """The batches of one pass, the same on every rank."""
        module = self.module
        rng = np.random.default_rng([module.seed, self.epoch, int(self.validation)])
        self.epoch += 1
        shuffle = None if self.validation else int(rng.integers(2**31))
        pool: list[Any] = []
        for row in module.episodes(validation=self.validation, shuffle_seed=shuffle):
            for task in module.tasks_for(row, rng, validation=self.validation):
                pool.append(module.encode(row, task, rng))
            if len(pool) >= module.bucket * module.batch_size:
                yield from self._batches(pool, rng)
                pool = []
        yield from self._batches(pool, rng)

    def _batches(self, pool: list[Any], rng: np.random.Generator) -> Iterator[list[Any]]:
        pool = sorted(pool, key=lambda example: len(example.input_ids))
        size = self.module.batch_size
        batches = [pool[start : start + size] for start in range(0, len(pool), size)]
        for index in rng.permutation(len(batches)):
            yield batches[int(index)]


class RolloutGoalDataModule(L.LightningDataModule):
    """Grounding batches from a rollout dataset (see the module docstring).

    Args:
        dataset: a Hub dataset repo id, or a local dataset folder (``kalm collect --out``).
        revision: the repo revision (tag, branch or commit sha); ignored for local folders.
        env: the environment the rollouts come from (goal phrasings and the schema check).
        backbone: the backbone whose tokenizer encodes the prompts (linked to the model's).
        object_tokens: give each state one position per object of the environment, for a model with
            ``object_tokens`` (linked to the model's; ``"auto"``: where the environment declares objects).
        batch_size: examples per batch.
        val_fraction: fraction of episodes held out for validation.
        task_weights: sampling weights of the tasks goal->rollout, dynamics, consequence, rollout->goal.
        tasks_per_episode: training examples drawn per episode and pass.
        max_episodes: use only the first N episodes of the dataset.
        bucket: batches' worth of examples sorted by length together (1: no bucketing).
        goal_tasks_need_success: train the goal tasks only on episodes that achieve their goal.
        explanation_phrasing: ``any``: rollout -> goal targets are a random training sentence of the goal, as
            the reference; ``canonical``: always the goal's first sentence, so the text loss is spent on the
            goal (which ball, where), not on which of its phrasings was drawn.
        shuffle_buffer: size of the streaming shuffle buffer.
        seed: seed of shuffling, task draws and phrasings.
    """

    def __init__(
        self,
        *,
        dataset: str,
        revision: str | None = None,
        env: str = "clevr",
        backbone: str = "smollm2-135m",
        object_tokens: bool | Literal["auto"] = False,
        batch_size: int = 16,
        val_fraction: float = 0.1,
        task_weights: tuple[float, ...] = DEFAULT_TASK_WEIGHTS,
        tasks_per_episode: int = 2,
        max_episodes: int | None = None,
        bucket: int = 8,
        goal_tasks_need_success: bool = True,
        explanation_phrasing: str = "any",
        shuffle_buffer: int = 1000,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if len(task_weights) != len(Task) or min(task_weights) < 0 or sum(task_weights) <= 0:
            raise ConfigError(
                f"task_weights={list(task_weights)} is invalid; expected {len(Task)} non-negative "
                "weights (goal->rollout, dynamics, consequence, rollout->goal) with a positive sum"
            )
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(f"val_fraction={val_fraction} is invalid; expected a fraction in (0, 1)")
        self.dataset, self.revision, self.suite = dataset, revision, get_suite(env)
        self.backbone, self.batch_size, self.val_fraction = backbone, batch_size, val_fraction
        self.state_tokens = max(1, len(self.suite.state_layout(object_tokens)))
        self.task_probabilities = np.asarray(task_weights, dtype=float) / float(np.sum(task_weights))
        self.tasks_per_episode, self.max_episodes, self.bucket = (
            tasks_per_episode,
            max_episodes,
            max(1, bucket),
        )
        if explanation_phrasing not in ("any", "canonical"):
            raise ConfigError(f"explanation_phrasing={explanation_phrasing!r}; expected 'any' or 'canonical'")
        self.goal_tasks_need_success, self.explanation_phrasing = (
            goal_tasks_need_success,
            explanation_phrasing,
        )
        self.shuffle_buffer, self.seed = shuffle_buffer, seed
        self.prompts: PromptEncoder | None = None
        self.resolved_revision: str | None = None
        self._stats: dict[str, torch.Tensor] | None = None

    # -- data access -----------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.prompts is None:
            self.prompts = PromptEncoder(load_tokenizer(self.backbone), state_tokens=self.state_tokens)
        check_features(self._stream().features, self.suite.spec)

    def episodes(self, *, validation: bool, shuffle_seed: int | None = None) -> Iterator[dict[str, Any]]:
        """Rows of one split, as numpy arrays, optionally shuffled through the streaming buffer."""
        stream = self._stream()
        if shuffle_seed is not None:
            stream = stream.shuffle(seed=shuffle_seed, buffer_size=self.shuffle_buffer)
        for row in stream:
            if is_validation(row["episode_id"], self.val_fraction) == validation:
                yield row

    def _stream(self) -> Any:
        from datamodules.sources import DatasetSource, load_source

        loaded = load_source(DatasetSource(self.dataset, self.revision), streaming=True)
        stream, self.resolved_revision = loaded.dataset, loaded.commit or "local"
        if self.max_episodes is not None:
            stream = stream.take(self.max_episodes)
        return stream.with_format("numpy")

    def shard(self) -> tuple[int, int]:
        """``(rank, world size)`` of the attached Trainer (``(0, 1)`` without one)."""
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def state_stats(self) -> dict[str, torch.Tensor]:
        """Mean and std of the training episodes' observations (and continuous actions), computed once."""
        if self._stats is None:
            observations, actions = [], []
            for row in self.episodes(validation=False):
                observations.append(row["observations"])
                actions.append(np.asarray(row["actions"], dtype=np.float32).reshape(len(row["actions"]), -1))
            if not observations:
                raise ConfigError(f"dataset {self.dataset!r} has no training episodes")
            states, moves = np.concatenate(observations), np.concatenate(actions)
            self._stats = {
                "state_mean": torch.from_numpy(states.mean(0)),
                "state_std": torch.from_numpy(states.std(0)),
                "action_mean": torch.from_numpy(moves.mean(0)),
                "action_std": torch.from_numpy(moves.std(0)),
            }
        return self._stats

    # -- examples --------------------------------------------------------------------------------
    def tasks_for(self, row: dict[str, Any], rng: np.random.Generator, *, validation: bool) -> list[Task]:
        """The tasks an episode yields: drawn from ``task_weights`` (all four for validation).

        Goal tasks (goal -> rollout, consequence, rollout -> goal) need a rollout that achieves its goal:
        an episode that never reached it (exploration, a failure) is not a rollout of that goal, so with
        ``goal_tasks_need_success`` it teaches only the dynamics task, which holds for any real transition.
        """
        if validation:
            tasks = list(Task)
        else:
            tasks = [
                Task(int(i))
                for i in rng.choice(len(Task), size=self.tasks_per_episode, p=self.task_probabilities)
            ]
        if self.goal_tasks_need_success and not bool(row["success"]):
            tasks = [Task.DYNAMICS] if Task.DYNAMICS in tasks or validation else []
        return tasks

    def encode(self, row: dict[str, Any], task: Task, rng: np.random.Generator) -> Any:
        assert self.prompts is not None, "call setup() first"
        length = int(row["length"])
        try:
            known = self.suite.goal(str(row["level"]), str(row["goal_id"]))
            canonical = task is Task.ROLLOUT_TO_GOAL and self.explanation_phrasing == "canonical"
            goal = known.sentences[0] if canonical else known.sentence(rng)
        except UnknownNameError:  # a goal the suite does not know: use the sentence stored with the rollout
            goal = str(row["instruction"])
        step = int(rng.integers(length))
        return self.prompts.encode(
            task, goal=goal, states=row["observations"], actions=row["actions"], step=step
        )

    def collate(self, examples: list[Any]) -> GroundingBatch:
        assert self.prompts is not None
        spec = self.suite.spec
        return collate(
            examples,
            pad_id=self.prompts.pad_id,
            obs_dim=spec.obs_dim,
            discrete=spec.discrete,
            action_dim=spec.action_dim,
        )

    def train_dataloader(self) -> DataLoader[list[Any]]:  # items: one batch of encoded examples, collated
        return DataLoader(_EpisodeBatches(self, validation=False), batch_size=None, collate_fn=self.collate)

    def val_dataloader(self) -> DataLoader[list[Any]]:  # items: one batch of encoded examples, collated
        return DataLoader(_EpisodeBatches(self, validation=True), batch_size=None, collate_fn=self.collate)
