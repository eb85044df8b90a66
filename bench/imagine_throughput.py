"""Imagination throughput: kalm's KV-cached decoding against the authors' uncached decoding.

    python bench/imagine_throughput.py [--backbone smollm2-135m] [--num-layers 8] [--device cpu|cuda]

Same model, same goals and initial states, same process, CLEVR horizon 50 (no early stop, so both
decode every element). The authors recompute the whole sequence for every generated element; kalm runs
the backbone once per element over the new position only. Prints rollouts/s per batch size and method,
the speed-up of the cache, and batch 64 against batch 1 (target: >= 10x at batch 64 on a CPU).

    python bench/imagine_throughput.py --model REPO[@REV] [--per-goal 2]

With a grounded model (a Hub repo or folder; the default run publishes
``kalm/kalm-clevr-grounded-smollm2-135m-8l``) it times imagination as the stage runs it, on every goal of the
novel levels: rollouts that stop at their goal only, against rollouts that also stop at their first
implausible state and leave the batch (kalm's way), and checks that both keep the same rollouts.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from kalm.envs import get_suite
from kalm.grounding.model import GroundedLM, GroundingConfig
from kalm.imagine.plan import initial_states, plan_items


def rollouts_per_second(
    model: GroundedLM, goals: list[str], states: np.ndarray, horizon: int, cache: bool, device: str
) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model.generate_rollouts(goals, states, horizon=horizon, use_cache=cache)
    if device == "cuda":
        torch.cuda.synchronize()
    return len(goals) / (time.perf_counter() - start)


def early_stop(path: str, per_goal: int) -> None:
    """Imagination with a grounded model: stop at the goal only, or also at the first implausible state."""
    from kalm.grounding.hub import load_grounded
    from kalm.imagine.plan import batches
    from kalm.imagine.run import decode_batch

    suite = get_suite("clevr")
    model = load_grounded(path).model.eval()
    plan = batches(plan_items(suite, ["rephrase", "easy", "hard"], per_goal=per_goal, seed=0), 64)
    decode_batch(
        model, suite, plan[0][:2], 0, horizon=2, greedy=True, temperature=1.0, seed=0, keep_implausible=False
    )  # warm-up
    kept, seconds = {}, {}
    for keep_implausible in (True, False):  # True: the filter runs after decoding every rollout to the end
        start, rows = time.perf_counter(), []
        for index, items in enumerate(plan):
            decoded, verdicts = decode_batch(
                model,
                suite,
                items,
                index,
                horizon=suite.spec.horizon,
                greedy=True,
                temperature=1.0,
                seed=0,
                keep_implausible=keep_implausible,
            )
            rows += [
                (row["episode_id"], row["actions"].tolist())
                for row, v in zip(decoded, verdicts, strict=True)
                if v == "plausible"
            ]
        seconds[keep_implausible], kept[keep_implausible] = time.perf_counter() - start, rows
    total = sum(len(items) for items in plan)
    print(f"{path}: {total} rollouts ({per_goal} per novel goal), {len(kept[False])} kept")
    print(f"stop at the goal only:                  {seconds[True]:7.1f} s")
    print(
        f"also at the first implausible state:    {seconds[False]:7.1f} s  "
        f"({seconds[True] / seconds[False]:.1f}x)"
    )
    print(f"same kept rollouts: {kept[True] == kept[False]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--horizon", type=int, default=50)
    parser.add_argument("--batch-sizes", default="1,64")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--model", help="a grounded model: time early stopping on the novel goals instead")
    parser.add_argument("--per-goal", type=int, default=2)
    args = parser.parse_args()
    if args.model:
        early_stop(args.model, args.per_goal)
        return
    torch.manual_seed(0)
    suite = get_suite("clevr")
    config = GroundingConfig(
        backbone=args.backbone,
        num_layers=args.num_layers,
        finetune="full",
        obs_dim=10,
        action_dim=40,
        discrete=True,
    )
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
        print(
            f"kalm batch {large} vs batch {small}: "
            f"{cached_rates[large] / cached_rates[small]:.1f}x rollouts/s"
        )


if __name__ == "__main__":
    main()
