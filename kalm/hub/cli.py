"""``kalm hub serve | ls | push | pull | tags | mirror | fsck``.

``fsck`` works on a store folder directly (see :mod:`kalm.hub.server.fsck`). Every other command except
``serve`` talks to the endpoint chosen by :func:`kalm.hub.endpoint.ensure_endpoint` (``--hub_endpoint``, the
flag every kalm command takes; else ``$KALM_HUB_ENDPOINT``/``$HF_ENDPOINT``, else a local server started for
the command over ``$KALM_HUB_ROOT`` or ``~/.cache/kalm/hub``). User errors print one line and return 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
import argparse
import logging
import sys
from pathlib import Path

from kalm.errors import KalmError
from kalm.hub.server.serve import add_serve_arguments, run_from_args

if TYPE_CHECKING:
    from huggingface_hub import HfApi


class _Renamed(argparse.Action):
    """A flag that was renamed: using it fails with one line naming the new one."""

    def __init__(self, *args: Any, new: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(f"{self.option_strings[0]} was renamed: use {self.new}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kalm hub", description="Publish, pull and serve kalm datasets and models."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_arguments(commands.add_parser("serve", help="run the local Hub-compatible server"))
    fsck = commands.add_parser(
        "fsck", help="verify a local store (refs, commits, blob sha256); --repair fixes it"
    )
    fsck.add_argument(
        "--root", default=None, help="store folder (default: $KALM_HUB_ROOT or ~/.cache/kalm/hub)"
    )
    fsck.add_argument(
        "--repair",
        action="store_true",
        help="quarantine what cannot be trusted, rebuild lost refs, remove orphans and leftovers",
    )
    fsck.add_argument(
        "--min-age",
        type=float,
        default=None,
        metavar="SECONDS",
        help="only remove orphans and leftovers older than this (default 3600: in-flight uploads "
        "of a running server are younger)",
    )

    def with_endpoint(name: str, help: str) -> argparse.ArgumentParser:  # noqa: A002
        sub = commands.add_parser(name, help=help)
        sub.add_argument(
            "--hub_endpoint",
            "--hub-endpoint",
            dest="endpoint",
            help="Hub URL (default: $KALM_HUB_ENDPOINT, $HF_ENDPOINT or a local server)",
        )
        sub.add_argument(
            "--endpoint", action=_Renamed, nargs="?", help=argparse.SUPPRESS, new="--hub_endpoint"
        )
        sub.add_argument("--token", help="token for that endpoint (default: $HF_TOKEN / $KALM_HUB_TOKEN)")
        sub.add_argument("--type", dest="repo_type", choices=("dataset", "model"), default="dataset")
        return sub

    ls = with_endpoint("ls", "list repos with their latest version")
    ls.add_argument("--author", help="only repos of this namespace")
    push = with_endpoint("push", "publish a rollout-dataset folder or a model folder as a new version")
    push.add_argument("folder", type=Path)
    push.add_argument("repo_id")
    push.add_argument("--version", help="vMAJOR.MINOR (default: the next free minor version)")
    push.add_argument("--bump", choices=("minor", "major"), default="minor")
    push.add_argument("--branch", default="main")
    pull = with_endpoint("pull", "download a dataset or model at a revision (default: latest version)")
    pull.add_argument("repo_id")
    pull.add_argument("--revision", help="tag, branch or commit sha")
    pull.add_argument("--out", type=Path, help="also write it into this folder")
    tags = with_endpoint("tags", "list the tags of a repo")
    tags.add_argument("repo_id")
    mirror = with_endpoint("mirror", "copy a repo with its tags to another endpoint (e.g. the real Hub)")
    mirror.add_argument("repo_id")
    mirror.add_argument("--to", required=True, help="destination endpoint URL, e.g. https://huggingface.co")
    mirror.add_argument("--to-token", help="token for the destination (default: $KALM_HUB_MIRROR_TOKEN)")
    mirror.add_argument("--to-repo", help="destination repo id (default: the same)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``kalm hub ...``; returns the exit status (2 for a user error, printed as one line)."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return run_from_args(args)
    if args.command == "fsck":
        return _fsck(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except KalmError as error:
        print(f"kalm: error: {error}", file=sys.stderr)
        return 2


def _api(args: argparse.Namespace) -> HfApi:
    from kalm.hub.endpoint import ensure_endpoint, hub_api

    return hub_api(ensure_endpoint(args.endpoint, token=args.token))


def _ls(args: argparse.Namespace) -> int:
    from kalm.hub.errors import hub_errors
    from kalm.hub.versions import list_versions

    api = _api(args)
    with hub_errors(args.author or "*", None, api.endpoint, "listing repos"):
        listing = api.list_datasets if args.repo_type == "dataset" else api.list_models
        repos = [repo.id for repo in listing(author=args.author)]
    for repo_id in repos:
        versions = list_versions(api, repo_id, args.repo_type)
        latest = f"{versions[-1][0]} {versions[-1][1][:10]}" if versions else "(no version)"
        print(f"{repo_id}\t{latest}")
    return 0


def _push(args: argparse.Namespace) -> int:
    from kalm.hub.datasets import publish_dataset
    from kalm.hub.models import publish_model

    _api(args)
    publish = publish_dataset if args.repo_type == "dataset" else publish_model
    done = publish(args.folder, args.repo_id, version=args.version, bump=args.bump, branch=args.branch)
    print(f"{done.repo_id} {done.version} {done.commit} {done.endpoint}")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from kalm.data import RolloutSpec, write_rollouts
    from kalm.hub.datasets import pull_dataset
    from kalm.hub.models import pull_model

    _api(args)
    if args.repo_type == "model":
        model = pull_model(args.repo_id, args.revision)
        if args.out:
            import shutil

            shutil.copytree(model.path, args.out, dirs_exist_ok=True)
        print(f"{model.repo_id} {model.revision} {model.commit} {args.out or model.path}")
        return 0
    pulled = pull_dataset(args.repo_id, args.revision)
    if args.out:
        write_rollouts(
            pulled.dataset,
            args.out,
            env=pulled.info["env"],
            spec=RolloutSpec.from_dict(pulled.info["rollout_spec"]),
            provenance=pulled.info["provenance"],
        )
    where = f" -> {args.out}" if args.out else ""
    print(f"{pulled.repo_id} {pulled.revision} {pulled.commit} {len(pulled.dataset)} rollouts{where}")
    return 0


def _tags(args: argparse.Namespace) -> int:
    from kalm.hub.errors import hub_errors

    api = _api(args)
    with hub_errors(args.repo_id, None, api.endpoint, "listing tags"):
        refs = api.list_repo_refs(args.repo_id, repo_type=args.repo_type)
    for tag in refs.tags:
        print(f"{tag.name}\t{tag.target_commit}")
    return 0


def _mirror(args: argparse.Namespace) -> int:
    import os

    from huggingface_hub import HfApi

    from kalm.hub.mirror import mirror_repo

    source = _api(args)
    destination = HfApi(
        endpoint=args.to.rstrip("/"), token=args.to_token or os.environ.get("KALM_HUB_MIRROR_TOKEN")
    )
    copied = mirror_repo(
        source, destination, args.repo_id, repo_type=args.repo_type, destination_repo_id=args.to_repo
    )
    for tag in copied:
        print(f"{tag.tag}\t{tag.source_commit} -> {tag.commit}")
    print(f"mirrored {len(copied)} tag(s) of {args.repo_id} to {destination.endpoint}")
    return 0


def _fsck(args: argparse.Namespace) -> int:
    """Print one line per repo and per finding; exit 1 when something was damaged (repaired or not)."""
    from kalm.hub.server.fsck import DEFAULT_MIN_AGE_S, fsck
    from kalm.hub.server.paths import default_root

    root = Path(args.root).expanduser() if args.root else default_root()
    try:
        report = fsck(
            root, repair=args.repair, min_age=DEFAULT_MIN_AGE_S if args.min_age is None else args.min_age
        )
    except FileNotFoundError as error:
        print(f"kalm: error: {error}", file=sys.stderr)
        return 2
    damaged_scopes = {finding.scope for finding in report.findings}
    for scope in report.repos:
        if scope not in damaged_scopes:
            print(f"{scope}: ok")
    for finding in report.findings:
        print(finding)
    damaged = report.damaged
    verdict = (
        "clean"
        if not report.findings
        else "repaired"
        if args.repair
        else "run with --repair to set the damage aside"
        if damaged
        else "run with --repair to remove garbage"
    )
    print(
        f"fsck {root}: {len(report.repos)} repos, {report.blobs_checked} blobs checked; "
        f"{len(damaged)} damaged, {len(report.findings) - len(damaged)} garbage; {verdict}"
    )
    return 1 if damaged else 0


COMMANDS = {"ls": _ls, "push": _push, "pull": _pull, "tags": _tags, "mirror": _mirror}

if __name__ == "__main__":
    raise SystemExit(main())
