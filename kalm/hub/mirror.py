"""Copy a repo with its version tags from one endpoint to another (e.g. local work to the real Hub).

For every tag of the source (oldest version first, then the head of ``main`` if it is newer) the
destination gets one commit holding exactly that snapshot, tagged with the same name. Tags already at
the destination are skipped, so a mirror can be re-run to send only what is new. Untagged intermediate
commits are folded into the next tagged one; branches other than ``main`` are not copied.

Each snapshot is sent with ``upload_folder(..., delete_patterns="*")``: files the destination has and the
snapshot lacks are deleted in the same commit. (A destination with Xet, like the real Hub, commits a
snapshot of more than a few hundred files in several batches; the tag goes to the last commit, which holds
the whole snapshot.)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download

from kalm.hub.errors import hub_errors
from kalm.hub.naming import tag_order

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MirroredTag:
    """One tag copied: its name, the source commit and the destination commit."""

    tag: str
    source_commit: str
    commit: str


def mirror_repo(
    source: HfApi,
    destination: HfApi,
    repo_id: str,
    *,
    repo_type: str = "dataset",
    destination_repo_id: str | None = None,
    private: bool = False,
) -> list[MirroredTag]:
    """Mirror ``repo_id`` from ``source`` to ``destination``; returns the tags copied (in order)."""
    target = destination_repo_id or repo_id
    with hub_errors(repo_id, None, source.endpoint, "reading the source repo"):
        refs = source.list_repo_refs(repo_id, repo_type=repo_type)
    tags = sorted(refs.tags, key=lambda ref: tag_order(ref.name))
    with hub_errors(target, None, destination.endpoint, "creating the destination repo"):
        destination.create_repo(target, repo_type=repo_type, private=private, exist_ok=True)
        present = {ref.name for ref in destination.list_repo_refs(target, repo_type=repo_type).tags}
    copied = []
    for ref in tags:
        if ref.name in present:
            logger.info("%s already has tag %s; skipped", target, ref.name)
            continue
        commit = _copy_snapshot(
            source,
            destination,
            repo_id,
            target,
            repo_type,
            ref.target_commit,
            message=f"Mirror {ref.name} of {repo_id} ({ref.target_commit[:10]})",
        )
        with hub_errors(target, commit, destination.endpoint, f"tagging {ref.name}"):
            destination.create_tag(target, tag=ref.name, revision=commit, repo_type=repo_type)
        copied.append(MirroredTag(ref.name, ref.target_commit, commit))
    main = next(branch.target_commit for branch in refs.branches if branch.name == "main")
    if not tags or tags[-1].target_commit != main:
        _copy_snapshot(
            source,
            destination,
            repo_id,
            target,
            repo_type,
            main,
            message=f"Mirror main of {repo_id} ({main[:10]})",
        )
    return copied


def _copy_snapshot(
    source: HfApi, destination: HfApi, repo_id: str, target: str, repo_type: str, commit: str, *, message: str
) -> str:
    """Make the destination's ``main`` hold exactly the source snapshot at ``commit``; returns the new
    commit."""
    with hub_errors(repo_id, commit, source.endpoint, "downloading the snapshot"):
        folder = Path(
            snapshot_download(
                repo_id, repo_type=repo_type, revision=commit, endpoint=source.endpoint, token=source.token
            )
        )
    with hub_errors(target, "main", destination.endpoint, "mirroring the snapshot"):
        # delete_patterns="*": every destination file the snapshot does not have goes (.gitattributes stays)
        info = destination.upload_folder(
            repo_id=target,
            folder_path=folder,
            repo_type=repo_type,
            commit_message=message,
            delete_patterns="*",
        )
    logger.info("mirrored %s@%s to %s@%s", repo_id, commit[:10], target, info.oid[:10])
    return info.oid
