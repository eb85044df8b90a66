"""The rollout dataset format shared by real and imaginary data (schema, folder layout, version)."""

from kalm.data.folder import (
    INFO_PATH,
    load_shards,
    read_info,
    read_rollouts,
    rollouts_to_dataset,
    summarize,
    write_rollouts,
)
from kalm.data.schema import (
    FORMAT_VERSION,
    RolloutSpec,
    check_features,
    check_format_version,
    rollout_features,
)

__all__ = [
    "FORMAT_VERSION",
    "INFO_PATH",
    "RolloutSpec",
    "check_features",
    "check_format_version",
    "load_shards",
    "read_info",
    "read_rollouts",
    "rollout_features",
    "rollouts_to_dataset",
    "summarize",
    "write_rollouts",
]
