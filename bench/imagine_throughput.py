"""Imagination throughput: kalm's KV-cached decoding against the authors' uncached decoding.

    python bench/imagine_throughput.py [--backbone smollm2-135m] [--num-layers 8] [--device cpu|cuda]

Same model, same goals and initial states, same process, CLEVR horizon 50 (no early stop, so both
decode every element). The authors recompute the whole sequence for every generated element; kalm runs
the backbone once per element over the new position only. Prints rollouts/s per batch size and method,
the speed-up of the cache, and batch 64 against batch 1 (target: >= 10x at batch 64 on a CPU).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from kalm.envs import get_suite
from kalm.grounding.model import GroundedLM, GroundingConfig
from kalm.imagine.plan import initial_states, plan_items


def rollouts_per_second(model: GroundedLM, goals: list[str], states: np.ndarray, horizon: int, cache: bool,
                        device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate_rollouts(goals, states, horizon=horizon, use_cache=cache)
    if device == "cuda":
        torch.cuda.synchronize()
    return len(goals) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.manual_seed(0)
    suite = get_suite("clevr")
    config = GroundingConfig(backbone=args.backbone, num_layers=args.num_layers, finetune="full",
                             obs_dim=10, action_dim=40, discrete=True)
    model = GroundedLM(config).to(args.device).eval()
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    items = plan_items(suite, ["rephrase"], per_goal=1, seed=0)[: max(sizes)]
    goals, states = [item.sentence for item in items], initial_states(suite, items)
    model.generate_rollouts(goals[:2], states[:2], horizon=2)  # warm-up
    print(f"{args.backbone} ({args.num_layers or 'all'} layers) on {args.device}, horizon {args.horizon}")
    print(f"{'batch':>5s} {'uncached rollouts/s':>20s} {'kalm (KV cache)':>16s} {'speed-up':>9s}")
    cached_rates = {}
    for size in sizes:
        uncached = rollouts_per_second(model, goals[:size], states[:size], args.horizon, False, args.device)
        cached = rollouts_per_second(model, goals[:size], states[:size], args.horizon, True, args.device)
        cached_rates[size] = cached
        print(f"{size:5d} {uncached:20.2f} {cached:16.2f} {cached / uncached:8.1f}x")
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        print(f"kalm batch {large} vs batch {small}: {cached_rates[large] / cached_rates[small]:.1f}x rollouts/s")


if __name__ == "__main__":
    main()
