"""Rollout datasets (one row per episode) -> flat transition arrays, vectorised over all episodes.

A pool keeps every observation of every episode once (``states``, ``T + 1`` rows per episode) and
indexes transitions into it: transition ``i`` goes from ``states[obs_index[i]]`` to
``states[obs_index[i] + 1]``. Goals are kept as an index into a table of distinct sentences, so the
(large) goal embedding is stored once per sentence, not once per transition.

Terminal handling (reference §6.4, fixed): only the last transition of an episode whose
``terminated`` column is true is terminal; the last transition of a truncated episode (time limit) is
``done`` but not terminal, so TD targets still bootstrap from its next state.
"""

from __future__ import annotations

from dataclasses import dataclass

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from kalm.data.schema import RolloutSpec, check_features
from kalm.errors import DatasetSchemaError

SOURCES = ("real", "imaginary")


@dataclass(frozen=True)
class TransitionArrays:
    """Transitions of many episodes as flat numpy arrays (see the module docstring).

    Attributes:
        states: ``[M, obs_dim]`` float32, every observation of every episode.
        obs_index: ``[N]`` int64, row of ``states`` each transition starts from.
        actions: ``[N]`` int64 (discrete) or ``[N, action_dim]`` float32.
        rewards: ``[N]`` float32.
        done: ``[N]`` bool, last transition of its episode.
        terminated: ``[N]`` bool, last transition of an episode that ended in a terminal state.
        sentence: ``[N]`` int64, the episode's instruction as an index into ``sentences``.
        source: ``[N]`` int8, 0 for real and 1 for imaginary rows.
        sentences: the distinct instruction sentences.
        level: ``[N]`` int64, the episode's level as an index into ``levels``.
        levels: the distinct levels.
    """

    states: np.ndarray
    obs_index: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    done: np.ndarray
    terminated: np.ndarray
    sentence: np.ndarray
    source: np.ndarray
    sentences: tuple[str, ...]
    level: np.ndarray
    levels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.obs_index)

    def select(self, mask: np.ndarray) -> TransitionArrays:
        """The transitions where ``mask`` is true (``states`` and ``sentences`` are shared, not copied)."""
        return TransitionArrays(
            self.states,
            self.obs_index[mask],
            self.actions[mask],
            self.rewards[mask],
            self.done[mask],
            self.terminated[mask],
            self.sentence[mask],
            self.source[mask],
            self.sentences,
            self.level[mask],
            self.levels,
        )


def episodes_to_transitions(
    dataset: datasets.Dataset,
    spec: RolloutSpec,
    *,
    levels: tuple[str, ...] | None = None,
    successful_only: bool = False,
    where: str = "dataset",
) -> TransitionArrays:
    """Turn a rollout dataset into :class:`TransitionArrays` without a Python loop over steps.

    Args:
        dataset: rows of the rollout schema (``kalm.data.schema``).
        spec: the environment's rollout spec; the dataset's features are checked against it.
        levels: keep only episodes of these levels (all when ``None``).
        successful_only: keep only episodes whose ``success`` flag is set (filtered behaviour cloning).
        where: name of the dataset in error messages (a path or repo id).

    Raises:
        DatasetSchemaError: a column is missing or mistyped, or the arrays disagree with ``length``.
    """
    try:
        check_features(dataset.features, spec)
    except DatasetSchemaError as error:
        raise DatasetSchemaError(f"{where}: {error}") from None
    table = dataset.with_format("arrow")[:]
    if levels is not None:
        table = table.filter(pc.is_in(table.column("level"), value_set=pa.array(list(levels))))
    if successful_only:
        table = table.filter(table.column("success"))
    lengths = table.column("length").to_numpy().astype(np.int64)
    if len(lengths) == 0:
        raise DatasetSchemaError(
            f"{where}: no episodes"
            + (f" of levels {list(levels)}" if levels else "")
            + (" that succeed" if successful_only else "")
        )
    states = _flatten(table.column("observations"), 2).reshape(-1, spec.obs_dim)
    _check_count(
        where, "observations", len(states), int((lengths + 1).sum()), f"(sum(length + 1), {spec.obs_dim})"
    )
    actions = _flatten(table.column("actions"), 1 if spec.discrete else 2)
    if not spec.discrete:
        actions = actions.reshape(-1, spec.action_dim)
    _check_count(where, "actions", len(actions), int(lengths.sum()), "sum(length) rows")
    rewards = _flatten(table.column("rewards"), 1).astype(np.float32)
    _check_count(where, "rewards", len(rewards), int(lengths.sum()), "sum(length) values")
    return _index(table, lengths, states, actions, rewards)


def _index(
    table: pa.Table, lengths: np.ndarray, states: np.ndarray, actions: np.ndarray, rewards: np.ndarray
) -> TransitionArrays:
    episodes = len(lengths)
    first_obs = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    episode_of = np.repeat(np.arange(episodes), lengths)
    step = np.arange(len(episode_of)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    last = step == lengths[episode_of] - 1
    terminated = table.column("terminated").to_numpy(zero_copy_only=False).astype(bool)
    sentences, sentence_of_episode = _distinct(table, "instruction")
    source_names = np.asarray(table.column("source").to_pylist(), dtype=object)
    unknown = set(source_names) - set(SOURCES)
    if unknown:
        raise DatasetSchemaError(f"column 'source' has values {sorted(unknown)}; expected one of {SOURCES}")
    source = (source_names == "imaginary").astype(np.int8)
    levels, level_of_episode = _distinct(table, "level")
    return TransitionArrays(
        states=np.ascontiguousarray(states, dtype=np.float32),
        obs_index=first_obs[episode_of] + step,
        actions=actions,
        rewards=rewards,
        done=last,
        terminated=last & terminated[episode_of],
        sentence=sentence_of_episode[episode_of],
        source=source[episode_of],
        sentences=sentences,
        level=level_of_episode[episode_of],
        levels=levels,
    )


def _distinct(table: pa.Table, column: str) -> tuple[tuple[str, ...], np.ndarray]:
    """The sorted distinct strings of a per-episode ``column`` and each episode's index into them (int64)."""
    names, index = np.unique(
        np.asarray(table.column(column).to_pylist(), dtype=object).astype(str), return_inverse=True
    )
    return tuple(str(name) for name in names), index.reshape(-1).astype(np.int64)


def _flatten(column: pa.ChunkedArray, depth: int) -> np.ndarray:
    """Concatenate a (nested) list column's values into one flat numpy array."""
    chunks = []
    for chunk in column.chunks:
        values = chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
        for _ in range(depth):
            values = pc.list_flatten(values)
        chunks.append(values.to_numpy(zero_copy_only=False))
    return np.concatenate(chunks) if chunks else np.zeros(0)


def _check_count(where: str, column: str, found: int, expected: int, shape: str) -> None:
    if found != expected:
        raise DatasetSchemaError(
            f"{where}: column {column!r} holds {found} rows in total; "
            f"expected {expected} {shape} from 'length'"
        )


def concatenate(parts: list[TransitionArrays]) -> TransitionArrays:
    """One :class:`TransitionArrays` holding the transitions of ``parts`` (sentence and level tables are
    merged)."""
    if len(parts) == 1:
        return parts[0]
    sentences, sentence = _merge_tables([(part.sentences, part.sentence) for part in parts])
    levels, level = _merge_tables([(part.levels, part.level) for part in parts])
    offsets = np.concatenate([[0], np.cumsum([len(part.states) for part in parts])[:-1]])
    return TransitionArrays(
        states=np.concatenate([part.states for part in parts]),
        obs_index=np.concatenate(
            [part.obs_index + offset for part, offset in zip(parts, offsets, strict=True)]
        ),
        actions=np.concatenate([part.actions for part in parts]),
        rewards=np.concatenate([part.rewards for part in parts]),
        done=np.concatenate([part.done for part in parts]),
        terminated=np.concatenate([part.terminated for part in parts]),
        sentence=sentence,
        source=np.concatenate([part.source for part in parts]),
        sentences=sentences,
        level=level,
        levels=levels,
    )


def _merge_tables(parts: list[tuple[tuple[str, ...], np.ndarray]]) -> tuple[tuple[str, ...], np.ndarray]:
    """Merge ``(names, index into names)`` pairs into one sorted name table and one index."""
    names = tuple(sorted({name for part_names, _ in parts for name in part_names}))
    position = {name: i for i, name in enumerate(names)}
    index = np.concatenate(
        [
            np.asarray([position[n] for n in part_names], dtype=np.int64)[part_index]
            for part_names, part_index in parts
        ]
    )
    return names, index
