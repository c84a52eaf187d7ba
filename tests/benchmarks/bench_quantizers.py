"""LFQ forward+backward time and peak memory: lfq-kit (exact entropy) vs vector-quantize-pytorch.

Run: ``pip install -e ".[bench]" && python tests/benchmarks/bench_quantizers.py`` (figures in docs/benchmarks.md).

Both sides compute the exact batch entropy over every token (vector-quantize-pytorch with
``frac_per_sample_entropy=1.0``, i.e. no token subsampling) with the same loss weights (entropy 0.1,
commitment 0.25, γ = 1, inverse temperature 100). Each configuration runs in a fresh subprocess; peak
memory is the growth of the peak RSS over the warm-up and timed steps (Linux: ``clear_refs`` resets the
peak, ``VmHWM`` reads it). Time is the median
of ``--repeats`` forward+backward passes after one warm-up. Configurations whose N × K float32 matrices
would not fit in memory on the other side are skipped and marked as such. The reference
``float32 (512 × N) @ (N × 512)`` matmul is timed in the same run: the exact entropy needs about three such
products (one forward, two backward) at K = 2^18.

Two focused figures, each in one process, interleaving the compared calls so a change in load hits both:

* ``--entropy``: ``exact_code_entropy`` forward + backward at K = 2^18, N = 16384 on LFQ's training logits
  (``4 · 100 · z``, ``z ~ 0.1 · N(0, 1)``), the single float32 ``(512 × N) @ (N × 512)`` product, and their
  ratio (the target is at most 6; about 3 products are inherent);
* ``--indices``: LFQ at dim 18 on 10,240 tokens, ``forward`` in eval mode (both entropies) against
  ``quantize_indices`` (the indices alone).

``--threads`` sets ``torch.set_num_threads`` (default 2, the benchmark machine's cores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from rss import peak_rss, reset_peak_rss

KS = [10, 14, 16, 18]
NS = [4096, 16384]
MEMORY_LIMIT = 16 * 2**30  # bytes: skip a side whose N × K working set (≈ 8 float32 copies, measured) exceeds this


def make_quantizer(impl: str, d: int):
    if impl == "lfq_kit":
        from lfq_kit.quantizers import LFQ

        return LFQ(d, entropy_weight=0.1, commitment_weight=0.25, diversity_gamma=1.0, entropy_anneal_steps=0)
    from vector_quantize_pytorch import LFQ as VqpLFQ

    return VqpLFQ(
        dim=d,
        codebook_size=2**d,
        entropy_loss_weight=0.1,
        commitment_loss_weight=0.25,
        diversity_gamma=1.0,
        frac_per_sample_entropy=1.0,
    )


def run_one(impl: str, d: int, n: int, repeats: int) -> dict:
    """Time and peak memory of forward+backward of one configuration (called in a subprocess)."""
    torch.manual_seed(0)
    q = make_quantizer(impl, d).train()
    # lfq-kit takes (B, C, N) channel-first; vector-quantize-pytorch takes (B, N, C) for sequences
    shape = (1, d, n) if impl == "lfq_kit" else (1, n, d)
    z = (torch.randn(shape) * 0.1).requires_grad_()

    def step():
        out = q(z)
        quantized, loss = (out.quantized, out.loss) if impl == "lfq_kit" else (out[0], out[2])
        (quantized.sum() * 0 + loss).backward()
        z.grad = None

    before = reset_peak_rss()  # inputs and model allocated; the peak of the steps below is the figure
    step()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "peak_bytes": max(peak_rss() - before, 0)}


def matmul_seconds(n: int, repeats: int) -> float:
    a, b = torch.randn(512, n), torch.randn(n, 512)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fits(impl: str, d: int, n: int) -> bool:
    return impl == "lfq_kit" or 8 * 4 * n * 2**d <= MEMORY_LIMIT


def _interleaved(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each function, one warm-up each, then ``repeats`` rounds calling each once."""
    for call in calls.values():
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
    return times


def entropy_figure(repeats: int, d: int = 18, n: int = 16384) -> None:
    """Exact batch entropy forward + backward against one (2^ceil(d/2) × N) @ (N × 2^floor(d/2)) product."""
    from lfq_kit.quantizers.entropy import exact_code_entropy

    torch.manual_seed(0)
    logits = 4 * 100.0 * (torch.randn(n, d) * 0.1)  # LFQ's per-bit logits 4 z / τ at the paper's τ = 0.01
    a = (d + 1) // 2
    left, right = torch.randn(2**a, n), torch.randn(n, 2 ** (d - a))

    def entropy_step():
        x = logits.clone().requires_grad_()
        exact_code_entropy(x).backward()

    times = _interleaved({"entropy": entropy_step, "product": lambda: left @ right}, repeats)
    ent, prod = statistics.median(times["entropy"]), statistics.median(times["product"])
    per_round = statistics.median(e / p for e, p in zip(times["entropy"], times["product"]))
    print(f"exact entropy K=2^{d}, N={n}, forward+backward: {ent * 1e3:.1f} ms (median of {repeats})")
    print(f"float32 ({2**a} x {n}) @ ({n} x {2 ** (d - a)}): {prod * 1e3:.1f} ms")
    print(f"ratio: {ent / prod:.2f} (of medians), {per_round:.2f} (median of per-round ratios); target <= 6")


def indices_figure(repeats: int, d: int = 18, shape: tuple[int, ...] = (2, 5, 32, 32)) -> None:
    """LFQ eval forward (losses, both entropies) against quantize_indices on the same latents."""
    from lfq_kit.quantizers import LFQ

    torch.manual_seed(0)
    q = LFQ(d).eval()
    z = torch.randn(shape[0], d, *shape[1:])
    tokens = z.numel() // d
    with torch.no_grad():
        assert torch.equal(q(z).indices, q.quantize_indices(z))
        times = _interleaved({"forward": lambda: q(z), "indices": lambda: q.quantize_indices(z)}, repeats)
    fwd, idx = statistics.median(times["forward"]), statistics.median(times["indices"])
    print(
        f"LFQ dim {d}, {tokens} tokens, eval: forward {fwd * 1e3:.2f} ms, quantize_indices {idx * 1e3:.3f} ms "
        f"({fwd / idx:.0f}x; median of {repeats})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--log2k", type=int, nargs="+", default=KS, help="vocabulary sizes as log2 K")
    parser.add_argument("--tokens", type=int, nargs="+", default=NS, help="token counts N")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--entropy", action="store_true", help="only the exact-entropy vs product figure")
    parser.add_argument("--indices", action="store_true", help="only the forward vs quantize_indices figure")
    parser.add_argument("--child", nargs=3, metavar=("IMPL", "D", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        impl, d, n = args.child
        print(json.dumps(run_one(impl, int(d), int(n), args.repeats)))
        return
    if args.entropy or args.indices:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        if args.entropy:
            entropy_figure(max(args.repeats, 7))
        if args.indices:
            indices_figure(max(args.repeats, 20))
        return

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    mm = {n: matmul_seconds(n, 5) for n in args.tokens}
    for n, s in mm.items():
        print(f"reference float32 (512 x {n}) @ ({n} x 512): {s * 1e3:.1f} ms")
    header = (
        f"{'K':>6} {'N':>6} | {'lfq-kit s':>9} {'MiB':>7} {'x matmul':>8} | {'vqp s':>8} {'MiB':>7} | {'speed-up':>8}"
    )
    print(header)
    print("-" * len(header))
    for d in args.log2k:
        for n in args.tokens:
            row = {}
            for impl in ("lfq_kit", "vqp"):
                if not fits(impl, d, n):
                    row[impl] = None
                    continue
                cmd = [sys.executable, __file__, "--repeats", str(args.repeats), "--threads", str(args.threads)]
                cmd += ["--child", impl, str(d), str(n)]
                out = subprocess.run(cmd, capture_output=True, text=True)
                if out.returncode != 0:  # e.g. killed for memory
                    raise RuntimeError(f"{impl} at K=2^{d}, N={n} failed ({out.returncode}): {out.stderr[-500:]}")
                row[impl] = json.loads(out.stdout.strip().splitlines()[-1])
            ours, theirs = row["lfq_kit"], row["vqp"]
            vqp = (
                f"{theirs['seconds']:8.3f} {theirs['peak_bytes'] / 2**20:7.0f}"
                if theirs
                else f"{'skipped (N*K too large)':>16}"
            )
            speedup = f"{theirs['seconds'] / ours['seconds']:7.0f}x" if theirs else f"{'-':>8}"
            print(
                f"2^{d:<4} {n:>6} | {ours['seconds']:9.3f} {ours['peak_bytes'] / 2**20:7.0f} "
                f"{ours['seconds'] / mm[n]:8.1f} | {vqp} | {speedup}",
                flush=True,
            )


if __name__ == "__main__":
    main()
