"""Grounding training throughput against a bare backbone forward+backward, same batch, same process.

    python bench/grounding_throughput.py [--backbone smollm2-135m] [--num-layers 8] [--finetune lora]
                                         [--layouts]

Both sides process the same padded positions: kalm's step embeds the numeric slots through the codec,
runs the decoder once and applies the heads where targets are; the baseline is the plain causal-LM step
``backbone(input_ids, labels=input_ids).loss.backward()`` on token ids of the same shape. The ratio
(kalm / baseline) is the throughput kept; the overhead target is <= 15 %. A third row runs the decoder
alone (no LM head anywhere), which isolates the cost of the codec, the slot scatter and the losses.

``--layouts`` also times the step under each CLEVR state layout, on the same rollouts and seed, against one
token per state: object tokens (five per state), object actions, object relations (kalm run's default).

Achieved FLOP/s: the FLOPs of one GroundedLM step are counted by ``torch.utils.flop_counter`` (forward and
backward, every matmul and attention kernel), divided by its time, and set against this CPU's matmul
throughput measured in the same process on the step's own largest GEMM shape (the MLP's up projection over
all padded positions) and on a 2048 x 2048 square product.
"""

from __future__ import annotations

import argparse
import time

import torch

from kalm.collect import collect_rollouts
from kalm.envs import get_suite
from kalm.grounding.batch import GroundingBatch
from kalm.grounding.model import GroundedLM, GroundingConfig
from kalm.grounding.prompts import Task


def timed(step, repeats: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def matmul_flops_per_second(m: int, k: int, n: int, repeats: int) -> float:
    """Throughput of ``[m, k] @ [k, n]`` in float32 on this process's threads."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    return 2 * m * k * n / timed(lambda: torch.matmul(a, b), repeats)


def counted_flops(step) -> int:
    """FLOPs of one call of ``step`` as torch's flop counter sees them (matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="smollm2-135m")
    parser.add_argument("--num-layers", type=int, default=8)
    parser.add_argument("--finetune", default="lora", choices=["lora", "full"])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--layouts", action="store_true", help="also time each CLEVR state layout")
    args = parser.parse_args()
    torch.manual_seed(0)
    suite = get_suite("clevr")
    rows = list(
        collect_rollouts(suite, episodes=args.batch_size, seed=1, progress=False).dataset.with_format("numpy")
    )

    def build(**layout: object) -> tuple[GroundedLM, GroundingBatch]:
        torch.manual_seed(0)
        config = GroundingConfig(
            backbone=args.backbone,
            num_layers=args.num_layers,
            finetune=args.finetune,
            obs_dim=10,
            action_dim=40,
            discrete=True,
            **layout,  # type: ignore[arg-type]
        )
        model = GroundedLM(config).train()
        examples = [
            model.prompts.encode(
                Task(i % 4),
                goal=str(row["instruction"]),
                states=row["observations"],
                actions=row["actions"],
                step=0,
            )
            for i, row in enumerate(rows)
        ]
        return model, model.collate(examples)

    model, batch = build()
    positions = int(batch.attention_mask.sum())

    def kalm_step() -> None:
        model.zero_grad(set_to_none=True)
        model(batch).loss.backward()

    def bare_step() -> None:
        model.zero_grad(set_to_none=True)
        model.backbone(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask, labels=batch.input_ids
        ).loss.backward()

    def decoder_step() -> None:  # the strictest baseline: no LM head at all, so only the codec's cost shows
        model.zero_grad(set_to_none=True)
        hidden = model.decoder(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state
        hidden.pow(2).mean().backward()

    bare, kalm = timed(bare_step, args.repeats), timed(kalm_step, args.repeats)
    decoder = timed(decoder_step, args.repeats)
    print(
        f"{args.backbone}, {args.num_layers or 'all'} layers, {args.finetune}; batch {args.batch_size}, "
        f"shape {tuple(batch.input_ids.shape)}, {positions} real positions"
    )
    print(f"{'step':36s} {'s/step':>8s} {'positions/s':>12s} {'ratio':>6s}")
    print(f"{'bare backbone forward+backward':36s} {bare:8.3f} {positions / bare:12,.0f} {1.0:6.2f}")
    print(
        f"{'bare decoder, no LM head':36s} {decoder:8.3f} {positions / decoder:12,.0f} {bare / decoder:6.2f}"
    )
    print(
        f"{'GroundedLM (codec + heads + losses)':36s} {kalm:8.3f} "
        f"{positions / kalm:12,.0f} {bare / kalm:6.2f}"
    )
    print(f"GroundedLM overhead over the bare decoder: {100 * (kalm / decoder - 1):+.1f} %")

    flops = counted_flops(kalm_step)
    hidden = model.backbone.config.hidden_size
    gemm = matmul_flops_per_second(
        batch.input_ids.numel(), hidden, model.backbone.config.intermediate_size, args.repeats
    )
    square = matmul_flops_per_second(2048, 2048, 2048, args.repeats)
    print(f"GroundedLM step: {flops / 1e9:.1f} GFLOP counted, {flops / kalm / 1e9:.1f} GFLOP/s achieved")
    print(
        f"matmul {batch.input_ids.numel()}x{hidden}x{model.backbone.config.intermediate_size}: "
        f"{gemm / 1e9:.1f} GFLOP/s (step/matmul {flops / kalm / gemm:.2f}); "
        f"2048^3: {square / 1e9:.1f} GFLOP/s (step/matmul {flops / kalm / square:.2f})"
    )
    print(f"padding: {1 - positions / batch.input_ids.numel():.0%} of the step's positions")
    if args.layouts:
        layouts = {
            "one token per state": {},
            "object tokens": {"state_objects": suite.state_objects},
            "+ object actions": {"state_objects": suite.state_objects, "object_actions": True},
            "+ object relations (the default)": {
                "state_objects": suite.state_objects,
                "object_actions": True,
                "object_relations": True,
            },
        }
        print(f"\n{'state layout':36s} {'s/step':>8s} {'positions':>10s} {'ratio':>6s}")
        first = None
        for name, layout in layouts.items():
            model, batch = build(**layout)
            seconds = timed(kalm_step, args.repeats)  # the same step, on this layout's model and batch
            first = first or seconds
            print(f"{name:36s} {seconds:8.3f} {int(batch.attention_mask.sum()):10d} {seconds / first:6.2f}")


if __name__ == "__main__":
    main()
