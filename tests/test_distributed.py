"""kalm.distributed on 2 real processes (gloo, TCP store): rank 0's results reach every rank, and a failure on
any rank fails every rank with that rank's error instead of a hang."""

from __future__ import annotations

import json
import os
import socket

import pytest
import torch.multiprocessing as mp


def _scenario(rank: int, port: int, scenario: str, out: str) -> None:
    import torch.distributed as dist

    from kalm import distributed

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    calls: list[str] = []
    outcome: dict[str, object] = {}
    try:
        if scenario == "share":
            outcome["value"] = distributed.on_rank_zero(
                "collect", lambda: calls.append("collect") or {"commit": "abc"}
            )
            outcome["each"] = distributed.on_every_rank("fit", lambda: rank * 10)
        elif scenario == "rank 0 fails":
            distributed.on_rank_zero("collect", lambda: (_ for _ in ()).throw(ValueError("no space left")))
        elif scenario == "rank 1 fails":

            def fit() -> int:
                if rank == 1:
                    raise ValueError("out of memory")
                return 0

            distributed.on_every_rank("fit", fit)
        outcome["ranks"] = list(distributed.current().__dict__.values())
        distributed.finish()
    except Exception as error:  # noqa: BLE001 (the outcome is what the test checks)
        outcome["error"] = f"{type(error).__name__}: {error}"
    outcome["calls"] = calls
    with open(os.path.join(out, f"rank{rank}.json"), "w") as file:
        json.dump(outcome, file)


def _run(scenario: str, tmp_path) -> list[dict]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.start_processes(
        _scenario, args=(port, scenario, str(tmp_path)), nprocs=2, start_method="spawn", join=True
    )
    return [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]


def test_rank_zero_works_alone_and_every_rank_gets_its_result(tmp_path):
    zero, one = _run("share", tmp_path)
    assert zero["calls"] == ["collect"] and one["calls"] == []
    assert zero["value"] == one["value"] == {"commit": "abc"}
    assert (zero["each"], one["each"]) == (0, 10)
    assert (zero["ranks"], one["ranks"]) == ([0, 2], [1, 2])


@pytest.mark.parametrize(
    ("scenario", "failing", "message"),
    [
        ("rank 0 fails", 0, "rank 0 failed in collect: ValueError: no space left"),
        ("rank 1 fails", 1, "rank 1 failed in fit: ValueError: out of memory"),
    ],
)
def test_a_failure_on_one_rank_fails_every_rank_with_its_error(tmp_path, scenario, failing, message):
    outcomes = _run(scenario, tmp_path)
    assert outcomes[failing]["error"] == "ValueError: " + message.rsplit("ValueError: ", 1)[1]
    assert outcomes[1 - failing]["error"] == f"RankFailed: {message}"


def test_the_ranks_store_is_found_at_the_rendezvous_address_only(monkeypatch):
    """The store is a client of the env:// rendezvous server; without its address the error names it."""
    from kalm import distributed
    from kalm.errors import KalmError

    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("MASTER_PORT", "29500")
    with pytest.raises(KalmError, match="MASTER_ADDR:MASTER_PORT"):
        distributed._store()
