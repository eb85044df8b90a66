"""One process group for a whole command, and the rules its ranks follow.

``kalm run`` with ``--trainer.devices N`` (Lightning's launcher re-runs the same command line ``N - 1`` times)
or under ``torchrun``/``srun`` starts :func:`start` first, so every stage of the run shares one process group;
the stages' Lightning ``Trainer`` s find it initialised and use it.

Rules (see README, "Scaling out"):

- **rank 0 owns side effects**: the hub endpoint, collection, publishing, ``stages.json``, the report.
  :func:`on_rank_zero` runs a function on rank 0 only while the other ranks wait, and hands its JSON-able
  result (e.g. ``{repo_id, version, commit}``) to every rank, which then pull by commit;
- **collective work** (``Trainer.fit``/``predict``) runs through :func:`on_every_rank`: every rank takes part,
  and no rank leaves before all have finished;
- **a failure on any rank fails every rank** with that rank's error (:class:`RankFailed`), never a hang:
  the failing rank leaves its error in the process group's key-value store, the others raise it instead of
  waiting (or instead of the broken-connection error of a collective the failed rank left).

Waiting goes through the store, polled, not through a collective, so a rank may wait for rank 0's collection
or evaluation however long they take (collectives time out after 30 minutes).

The store is a client of the TCPStore the default process group rendezvoused through (see :func:`_store`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from kalm.errors import KalmError

if TYPE_CHECKING:
    from torch.distributed import Store

log = logging.getLogger(__name__)
T = TypeVar("T")
POLL_S = 0.1
ABORT_KEY = "kalm/abort"
ABORT_GRACE_S = 10.0
"""How long a failing rank 0 (which hosts the store) waits for the other ranks to read its error."""
STORE_TIMEOUT = timedelta(minutes=5)
"""How long a store client tries to connect (and a blocking store call waits; kalm polls with ``check``)."""


class RankFailed(KalmError):
    """Another rank of the run failed; the message is that rank's error (its traceback is in its own log)."""


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: global ``rank`` of ``world_size``."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_zero(self) -> bool:
        return self.rank == 0


def launched_world_size() -> int:
    """The world size an external launcher (``torchrun``, ``srun`` through Lightning) announced, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def start(*, accelerator: str, devices: int, num_nodes: int) -> Ranks:
    """Join (or, as Lightning's launcher, create) the run's processes and their process group.

    With one process this does nothing. Otherwise Lightning's own launcher (``Fabric.launch``) starts the
    other local processes by re-running this command line (or finds those ``torchrun`` started) and
    initialises the default process group (gloo on CPU, NCCL on GPUs); later Trainers reuse it.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return current()
    if devices * num_nodes == 1 and launched_world_size() == 1:
        return Ranks()
    from lightning.fabric import Fabric

    Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy="ddp").launch()
    ranks = current()
    log.info("rank %d of %d joined the run", ranks.rank, ranks.world_size)
    return ranks


def current() -> Ranks:
    """This process's rank and the world size (``Ranks()`` when no process group is initialised)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def finish() -> None:
    """Wait until every rank is here, then leave the process group (rank 0's hub server outlives the
    pulls)."""
    import torch.distributed as dist

    if current().world_size > 1:
        on_every_rank("finish", lambda: None)
        dist.destroy_process_group()


_calls = 0


def _key(name: str) -> str:
    """A store key unique to this call: every rank makes the same calls in the same order."""
    global _calls
    _calls += 1
    return f"kalm/{_calls}/{name}"


_clients: dict[tuple[str, int], Store] = {}


def _store() -> Store:
    """This process's client of the run's key-value store: the TCPStore server at ``MASTER_ADDR:MASTER_PORT``.

    Both launchers kalm supports initialise the default process group by ``env://`` rendezvous, whose
    TCPStore server listens there: Lightning's launcher (also under SLURM) has rank 0 host it, ``torchrun``
    its agent (``TORCHELASTIC_USE_AGENT_STORE``; a fresh store per restart, so no stale keys). A second client
    of that server (public ``torch.distributed.TCPStore``) needs no port of its own (none to collide, none to
    open between nodes) and lives exactly as long as the process group's own store. Not a new gloo group
    with ``broadcast_object_list``: a collective cannot be polled, so a waiting rank could neither see another
    rank's failure nor wait past the group's timeout; not a ``FileStore``: it needs a filesystem shared by
    every node.
    """
    import torch.distributed as dist

    try:
        address = (os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))
    except (KeyError, ValueError):
        raise KalmError(
            "kalm's ranks share a store at MASTER_ADDR:MASTER_PORT (env:// rendezvous, as Lightning's "
            "launcher and torchrun set); these variables are missing or invalid"
        ) from None
    if address not in _clients:
        _clients[address] = dist.TCPStore(
            *address, is_master=False, timeout=STORE_TIMEOUT, wait_for_workers=False
        )
    return _clients[address]


def on_rank_zero(name: str, produce: Callable[[], T]) -> T:
    """Run ``produce`` on rank 0 while the others wait; every rank returns rank 0's (JSON-able) result."""
    ranks = current()
    if ranks.world_size == 1:
        return produce()
    key = _key(name)
    if not ranks.is_zero:
        return json.loads(_wait_for(key, name))["value"]
    value = _guarded(name, produce, ranks)
    _store().set(key, json.dumps({"value": value}))
    return value


def on_every_rank(name: str, run: Callable[[], T]) -> T:
    """Run ``run`` on every rank (collective work); returns each rank's own result once all have finished."""
    ranks = current()
    if ranks.world_size == 1:
        return run()
    key = _key(name)
    result = _guarded(name, run, ranks)
    store = _store()
    store.add(f"{key}/done", 1)
    while store.add(f"{key}/done", 0) < ranks.world_size:
        _raise_if_aborted(store, name)
        time.sleep(POLL_S)
    return result


def _guarded(name: str, run: Callable[[], T], ranks: Ranks) -> T:
    """``run()``; on a failure, report it to the other ranks, or raise another rank's earlier failure
    instead."""
    try:
        return run()
    except BaseException as error:
        store = _store()
        other = _abort_message(store, wait_s=2.0)  # a collective broken by a rank that failed first
        if other is not None and other["rank"] != ranks.rank:
            store.add(f"{ABORT_KEY}/seen", 1)
            raise RankFailed(_describe(other)) from error
        message = {"rank": ranks.rank, "stage": name, "error": f"{type(error).__name__}: {error}"}
        store.set(ABORT_KEY, json.dumps(message))
        log.error("rank %d failed in %s: %s", ranks.rank, name, message["error"])
        if ranks.is_zero:  # rank 0 hosts the store: let the others read the error before it goes away
            deadline = time.monotonic() + ABORT_GRACE_S
            while store.add(f"{ABORT_KEY}/seen", 0) < ranks.world_size - 1 and time.monotonic() < deadline:
                time.sleep(POLL_S)
        raise


def _wait_for(key: str, name: str) -> str:
    store = _store()
    while not store.check([key]):
        _raise_if_aborted(store, name)
        time.sleep(POLL_S)
    return store.get(key).decode()


def _abort_message(store: Store, *, wait_s: float = 0.0) -> dict[str, Any] | None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if store.check([ABORT_KEY]):
                return json.loads(store.get(ABORT_KEY).decode())
        except RuntimeError:  # the store went away with rank 0
            return None
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_S)


def _raise_if_aborted(store: Store, name: str) -> None:
    other = _abort_message(store)
    if other is not None:
        store.add(f"{ABORT_KEY}/seen", 1)
        raise RankFailed(_describe(other))


def _describe(message: dict[str, Any]) -> str:
    return f"rank {message['rank']} failed in {message['stage']}: {message['error']}"
