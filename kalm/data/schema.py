"""The rollout dataset schema: one row per rollout-goal pair, explicit float32 features, a format version.

A rollout of ``T`` steps stores ``T + 1`` observations (the initial one and one after every action),
``T`` actions and ``T`` rewards. ``terminated`` means the goal's judge ended the episode (success);
``truncated`` means the horizon ended it. Real and imaginary rollouts share this schema and are told
apart by ``source``; ``level`` names the goal set the goal belongs to (``train``, ``rephrase``, ``easy``,
``hard``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import datasets
import numpy as np

from kalm.errors import DatasetSchemaError

FORMAT_VERSION = "1.0"
"""Version of the on-disk rollout format; bump the major part on incompatible changes."""

SUPPORTED_MAJOR = 1
SOURCES = ("real", "imaginary")


@dataclass(frozen=True)
class RolloutSpec:
    """Shapes of one environment's rollouts.

    Args:
        obs_dim: length of an observation vector.
        action_dim: number of discrete actions when ``discrete``, else the action vector length.
        discrete: whether actions are integers in ``[0, action_dim)``.
        horizon: the maximum number of steps of an episode.
    """

    obs_dim: int
    action_dim: int
    discrete: bool
    horizon: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutSpec:
        return cls(**{key: data[key] for key in ("obs_dim", "action_dim", "discrete", "horizon")})


def rollout_features(spec: RolloutSpec) -> datasets.Features:
    """The HF ``Features`` of a rollout dataset for ``spec`` (floats stay float32)."""
    if spec.discrete:
        actions: Any = datasets.List(datasets.Value("int64"))
    else:
        actions = datasets.Array2D(shape=(None, spec.action_dim), dtype="float32")
    return datasets.Features(
        episode_id=datasets.Value("int64"),
        env=datasets.Value("string"),
        source=datasets.Value("string"),
        level=datasets.Value("string"),
        goal_id=datasets.Value("string"),
        instruction=datasets.Value("string"),
        seed=datasets.Value("int64"),
        length=datasets.Value("int32"),
        observations=datasets.Array2D(shape=(None, spec.obs_dim), dtype="float32"),
        actions=actions,
        rewards=datasets.List(datasets.Value("float32")),
        terminated=datasets.Value("bool"),
        truncated=datasets.Value("bool"),
        success=datasets.Value("bool"),
    )


def check_features(features: datasets.Features, spec: RolloutSpec) -> None:
    """Raise ``DatasetSchemaError`` naming the first missing or mistyped column."""
    expected = rollout_features(spec)
    for name, feature in expected.items():
        if name not in features:
            raise DatasetSchemaError(f"rollout dataset has no column {name!r}; expected {_describe(feature)}")
        if features[name] != feature:
            raise DatasetSchemaError(
                f"column {name!r} is {_describe(features[name])}; expected {_describe(feature)}"
            )


def check_row(row: dict[str, Any], spec: RolloutSpec) -> None:
    """Raise ``DatasetSchemaError`` if one rollout's arrays disagree with each other or with ``spec``."""
    length = int(row["length"])
    where = f"episode {row.get('episode_id')!r}"
    observations = np.asarray(row["observations"])
    if observations.shape != (length + 1, spec.obs_dim):
        raise DatasetSchemaError(
            f"{where}: observations have shape {observations.shape}; expected ({length + 1}, {spec.obs_dim})"
        )
    actions = np.asarray(row["actions"])
    expected_actions = (length,) if spec.discrete else (length, spec.action_dim)
    if actions.shape != expected_actions:
        raise DatasetSchemaError(f"{where}: actions have shape {actions.shape}; expected {expected_actions}")
    if len(row["rewards"]) != length:
        raise DatasetSchemaError(f"{where}: {len(row['rewards'])} rewards; expected {length}")
    if not 0 < length <= spec.horizon:
        raise DatasetSchemaError(f"{where}: length {length}; expected 1..{spec.horizon}")
    if spec.discrete and length and not (0 <= actions.min() and actions.max() < spec.action_dim):
        raise DatasetSchemaError(f"{where}: actions outside [0, {spec.action_dim})")
    if row["source"] not in SOURCES:
        raise DatasetSchemaError(f"{where}: source {row['source']!r}; expected one of {SOURCES}")


def check_format_version(version: object) -> None:
    """Accept any ``1.x`` format; reject others with the version found and the one expected."""
    major = str(version).split(".", 1)[0]
    if not major.isdigit() or int(major) != SUPPORTED_MAJOR:
        raise DatasetSchemaError(
            f"rollout format version {version!r} is not supported; this kalm reads {SUPPORTED_MAJOR}.x"
        )


def _describe(feature: object) -> str:
    if isinstance(feature, datasets.Array2D):
        return f"Array2D(shape={feature.shape}, dtype={feature.dtype})"
    return repr(feature)
