"""GroundedLM under DDP (2 CPU processes, gloo): batches without action or text targets train without
``find_unused_parameters``, and the ranks keep identical weights."""

from __future__ import annotations

import os

import torch
import torch.multiprocessing as mp

from kalm.grounding.prompts import Task


def _train(rank: int, world: int, init: str, rows: list[dict], tasks: list[int], out: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from kalm.backbones import load_tokenizer
    from kalm.grounding.model import GroundedLM, GroundingConfig

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.manual_seed(0)
    model = GroundedLM(
        GroundingConfig(backbone="tiny-llama", obs_dim=10, action_dim=40, discrete=True, finetune="full"),
        tokenizer=load_tokenizer("tiny-llama"),
    )
    ddp = DistributedDataParallel(model)  # find_unused_parameters=False, as Lightning's "ddp"
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-2)
    task = Task(tasks[rank])  # each rank its own task: some batches hold no action and no text targets
    batch = model.collate(
        [
            model.prompts.encode(
                task, goal=str(row["instruction"]), states=row["observations"], actions=row["actions"], step=0
            )
            for row in rows
        ]
    )
    for _ in range(3):
        optimizer.zero_grad()
        ddp(batch).loss.backward()
        optimizer.step()
    torch.save(
        {name: p.detach() for name, p in model.named_parameters()}, os.path.join(out, f"rank{rank}.pt")
    )
    dist.destroy_process_group()


def test_grounding_trains_under_ddp_without_unused_parameters(episodes, tmp_path):
    tasks = (Task.DYNAMICS, Task.ROLLOUT_TO_GOAL)  # rank 0: no action and no text targets; rank 1: text only
    rows = [row for row in episodes if row["success"]][:4]
    mp.start_processes(
        _train,
        args=(2, f"file://{tmp_path / 'rendezvous'}", rows, [int(t) for t in tasks], str(tmp_path)),
        nprocs=2,
        start_method="spawn",
    )
    weights = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    assert weights[0].keys() == weights[1].keys()
    for name, value in weights[0].items():
        torch.testing.assert_close(value, weights[1][name], rtol=0, atol=0, msg=name)
