"""Trained policies on disk and on the Hub: a small folder with weights, spec and goal-encoder id.

```
<folder>/
  policy.safetensors   the policy network's weights
  policy.json          PolicySpec, goal encoder id, algorithm, env, training settings
```

:func:`push_policy` publishes such a folder as a versioned Hub model repo (commit + ``vMAJOR.MINOR``
tag, through :func:`kalm.hub.models.publish_model`); :func:`load_policy` reads a folder or a repo id
at a revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from kalm.errors import ConfigError
from kalm.hub.reference import locate
from kalm.rl.goal_encoder import GoalEncoder, GoalStandardization
from kalm.rl.networks import Policy, PolicySpec

WEIGHTS = "policy.safetensors"
CONFIG = "policy.json"
POLICY_FORMAT = "1.0"


@dataclass
class LoadedPolicy:
    """A policy with what it needs to act: the goal encoder it was trained with and its metadata."""

    policy: Policy
    goal_encoder: str
    algorithm: str
    env: str | None
    metadata: dict[str, Any]
    source: str
    goal_standardization: GoalStandardization | None = None
    """Applied to the goal embeddings the policy was trained on (``None``: raw embeddings)."""

    def encoder(self, shared: GoalEncoder | None = None) -> GoalEncoder:
        """The goal encoder this policy acts with: ``shared`` (an encoder of the same id, whose cache and
        model it shares) or a new one, with the policy's standardization."""
        if shared is not None and shared.model_id != self.goal_encoder:
            raise ConfigError(
                f"policy {self.name} was trained with goal encoder {self.goal_encoder!r}, "
                f"not {shared.model_id!r}"
            )
        return (shared or GoalEncoder(self.goal_encoder)).standardized(self.goal_standardization)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or f"{self.algorithm}:{Path(self.source).name}")


def save_policy(
    policy: Policy,
    folder: str | Path,
    *,
    goal_encoder: str,
    algorithm: str,
    env: str | None,
    goal_standardization: GoalStandardization | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``policy`` to ``folder`` (created; existing files of the same names are replaced).

    Returns:
        The folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {key: value.detach().cpu().contiguous() for key, value in policy.net.state_dict().items()}
    save_file(state, str(folder / WEIGHTS))
    config = {
        "format": POLICY_FORMAT,
        "spec": policy.spec.to_dict(),
        "goal_encoder": goal_encoder,
        "algorithm": algorithm,
        "env": env,
        **(extra or {}),
    }
    if goal_standardization is not None:
        config["goal_standardization"] = goal_standardization.to_dict()
    (folder / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True, default=str) + "\n")
    return folder


def load_policy(
    source: str | Path, revision: str | None = None, *, hub_endpoint: str | None = None
) -> LoadedPolicy:
    """Load a policy folder, or a Hub model repo ``namespace/name[@revision]`` at ``revision``.

    Raises:
        ConfigError: ``source`` is neither a policy folder nor a repo id, or its files are missing.
    """
    location = locate(
        source, revision, what="policy", hint="expected a policy folder or a Hub repo REPO[@REV]"
    )
    folder = location.folder
    if folder is None:
        from kalm.hub.endpoint import ensure_endpoint
        from kalm.hub.models import pull_model

        folder = pull_model(
            str(location.repo_id), location.revision, endpoint=ensure_endpoint(hub_endpoint)
        ).path
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise ConfigError(f"{source} is not a kalm policy: expected {CONFIG} and {WEIGHTS}")
    config = json.loads((folder / CONFIG).read_text())
    policy = Policy(PolicySpec.from_dict(config["spec"]))
    policy.net.load_state_dict(load_file(str(folder / WEIGHTS)))
    policy.eval()
    return LoadedPolicy(
        policy,
        str(config["goal_encoder"]),
        str(config["algorithm"]),
        config.get("env"),
        config,
        str(source if location.folder is not None else location.repo_id),  # a repo: without its @REV
        GoalStandardization.from_dict(config.get("goal_standardization")),
    )


def push_policy(
    folder: str | Path,
    repo_id: str,
    *,
    version: str | None = None,
    provenance: dict[str, Any] | None = None,
    hub_endpoint: str | None = None,
) -> Any:
    """Publish a policy folder as a versioned Hub model repo; returns the hub's ``Published`` record."""
    from kalm.hub.endpoint import ensure_endpoint
    from kalm.hub.models import publish_model

    config = json.loads((Path(folder) / CONFIG).read_text())
    provenance = {
        **(provenance or {}),
        "goal_encoder": config["goal_encoder"],
        "algorithm": config["algorithm"],
    }
    return publish_model(
        folder,
        repo_id,
        env=str(config.get("env") or "unknown"),
        base_model=config["goal_encoder"],
        provenance=provenance,
        version=version,
        library_name="torchrl",
        description=f"KALM offline-RL policy ({config['algorithm']}) for {config.get('env')}.",
        endpoint=ensure_endpoint(hub_endpoint),
    )


def act(policy: Policy, states: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
    """Actions for a batch of states ``[B, obs_dim]`` and goal embeddings ``[B, goal_dim]``."""
    with torch.no_grad():
        return policy(torch.cat([states, goals], dim=-1))
