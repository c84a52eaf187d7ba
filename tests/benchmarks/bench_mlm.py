"""Masked LM: factorized sub-token heads against one 2^18-way head, and MaskGIT decoding against its forward passes.

Run: ``python tests/benchmarks/bench_mlm.py`` (figures in docs/generation.md).

1. Heads (paper Sec. 3.1): for the B preset (12 x 768) and the quickstart size (4 x 256) over the quickstart grid
   (5 x 8 x 8 tokens + class token), ``num_groups=2`` (two 512-row tables, two tied 512-way heads) against
   ``num_groups=1`` (one 2^18-row table, one tied 2^18-way head): parameters, peak RSS growth of one training
   step (forward, backward, AdamW), and the median step time. Each configuration runs in a fresh subprocess.
2. Decoding: ``MaskedLM.generate`` wall time per batch at 12 and 64 steps against ``steps x`` the time of one
   forward pass over the whole sequence measured in the same run (the limit: decoding adds at most 15 %), and
   tokens per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from rss import peak_rss, reset_peak_rss

GRID = (5, 8, 8)
SIZES = {"B": dict(dim=768, depth=12, num_heads=12), "quickstart": dict(dim=256, depth=4, num_heads=4)}


def build(size: str, groups: int):
    from lfq_kit.backbones import BidirectionalTransformer
    from lfq_kit.models import MaskedLM

    backbone = BidirectionalTransformer(**SIZES[size], dropout=0.0, attn_dropout=0.0)
    model = MaskedLM(backbone, grid=GRID, codebook_size=2**18, num_groups=groups, num_classes=10, warmup_steps=0)
    model.log = lambda *a, **k: None
    return model


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def heads_case(size: str, groups: int, batch: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build(size, groups)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch_ = {"indices": torch.randint(0, 2**18, (batch, *GRID)), "label": torch.randint(0, 10, (batch,))}

    def step():
        loss = model.training_step(batch_, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    base = reset_peak_rss()
    seconds = _median_time(step, repeats)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "step_s": seconds,
        "peak_mib": (peak_rss() - base) / 2**20,
    }


def decode_case(size: str, batch: int, repeats: int, all_steps: tuple[int, ...] = (12, 64)) -> list[dict]:
    torch.manual_seed(0)
    model = build(size, 2).eval()
    labels = torch.randint(0, 10, (batch,))
    inputs = torch.full((batch, 320), model.mask_id)
    rows = []
    with torch.no_grad():
        forward = _median_time(lambda: model(inputs, labels), repeats)
        for steps in all_steps:
            gen = lambda: model.generate(labels, steps=steps, generator=torch.Generator().manual_seed(0))  # noqa: E731, B023
            seconds = _median_time(gen, max(1, repeats // 2))
            rows.append(
                {
                    "steps": steps,
                    "generate_s": seconds,
                    "forwards_s": steps * forward,
                    "overhead": seconds / (steps * forward) - 1,
                    "tokens_per_s": batch * 320 / seconds,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--decode-steps", type=int, nargs="*", default=[12, 64])
    parser.add_argument("--skip-heads", action="store_true", help="only the decoding table")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: one heads case in this process
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case:
        size, groups = args.case.split(":")
        print(json.dumps(heads_case(size, int(groups), args.batch, args.repeats)))
        return
    if not args.skip_heads:
        heads_table(args)
    decode_table(args)


def heads_table(args: argparse.Namespace) -> None:
    print(f"heads, training step at batch {args.batch} over {GRID} tokens ({args.threads} threads)")
    print("| model | heads | parameters | peak RSS growth (MiB) | step (s) |\n| --- | --- | --- | --- | --- |")
    for size in args.sizes:
        for groups, name in ((2, "2 x 512 (factorized)"), (1, "1 x 262144")):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--case",
                    f"{size}:{groups}",
                    "--threads",
                    str(args.threads),
                    "--repeats",
                    str(args.repeats),
                    "--batch",
                    str(args.batch),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {size} | {name} | {r['params'] / 1e6:.1f} M | {r['peak_mib']:.0f} | {r['step_s']:.3f} |")


def decode_table(args: argparse.Namespace) -> None:
    print(f"\ndecoding at batch {args.batch} (320 tokens each)")
    print(
        "| model | steps | generate (s) | steps x forward (s) | overhead | tokens/s |\n"
        "| --- | --- | --- | --- | --- | --- |"
    )
    for size in args.sizes:
        for r in decode_case(size, args.batch, args.repeats, tuple(args.decode_steps)):
            print(
                f"| {size} | {r['steps']} | {r['generate_s']:.3f} | {r['forwards_s']:.3f} "
                f"| {100 * r['overhead']:+.1f} % "
                f"| {r['tokens_per_s']:.0f} |"
            )


if __name__ == "__main__":
    main()
