"""Compression speed and coder overhead with the quickstart tokenizer (and masked LM), on CPU.

Run: ``python tests/benchmarks/bench_compression.py`` (figures in docs/benchmarks.md); it needs
``runs/quickstart/checkpoints/last.ckpt`` (``lfq-kit fit --config configs/quickstart.yaml``), for the factorized
prior ``runs/quickstart/checkpoints/last.prior.safetensors`` (``lfq-kit fit-prior``, docs/compression.md) and for
the mlm prior ``runs/quickstart_mlm/checkpoints/last.ckpt``. Missing priors are skipped with a note. Not collected
by pytest.

Input: the first ``--frames`` (68: four 17-frame chunks) frames of the held-out ``carphone_pristine.mp4``, center
square resized to 64 × 64 and to 128 × 128, held in memory (decoding the input file is not timed). For each size and
prior: ``compress_video`` to a file and ``decompress_video`` from it (frames kept in memory, no MP4 written), timed
end to end and split into the tokenizer's time (encoder or decoder) and the coding time (the prior: bit packing or
range coding, and the masked LM's forward passes); frames per second are original frames over the whole call. The
mlm prior runs at 64 × 64 only (its grid is that of 17 × 64 × 64 clips). Overhead: the payload bits against the
ideal ``−Σ log2 p`` of the same tokens under the same integer weights; the check is payload ≤ 1.01 · ideal + 64
bits per chunk (constriction flushes at most two 32-bit words per stream). Each figure is the median of
``--repeats`` (3) runs; the load average is printed, since anything else running slows every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from lfq_kit.compression import (
    FactorizedPrior,
    MaskedLMPrior,
    PackedPrior,
    TensorSource,
    compress_video,
    decompress_video,
    sidecar_path,
)
from lfq_kit.compression.range_coding import STREAM_FLUSH_BITS
from lfq_kit.compression.rate_distortion import load_clip
from lfq_kit.models import FrozenTokenizer


def _priors(tok: FrozenTokenizer, args, size: int) -> dict:
    priors = {"packed": PackedPrior(tok.codebook_size)}
    prior_file = sidecar_path(args.tokenizer)
    if prior_file.is_file():
        priors["factorized"] = FactorizedPrior.load(prior_file, tokenizer_hash=tok.hash)
    else:
        print(f"note: factorized skipped, no {prior_file}")
    if size == 64 and Path(args.mlm).is_file():
        priors["mlm"] = MaskedLMPrior.load(args.mlm, steps=args.mlm_steps)
    elif size == 64:
        print(f"note: mlm skipped, no {args.mlm}")
    return priors


def _ideal(prior, tokens: list[torch.Tensor]) -> float:
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tokens:
        groups.setdefault(tuple(t.shape), []).append(t)
    return sum(sum(prior.ideal_bits(torch.stack(g))) for g in groups.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokenizer", default="runs/quickstart/checkpoints/last.ckpt")
    parser.add_argument("--mlm", default="runs/quickstart_mlm/checkpoints/last.ckpt")
    parser.add_argument("--mlm-steps", type=int, default=12)
    parser.add_argument("--frames", type=int, default=68)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4)
    args = parser.parse_args()
    tok = FrozenTokenizer(args.tokenizer)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.2f}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (64, 128):
            frames, fps = load_clip("sample:carphone_pristine.mp4", resolution=size, frames=args.frames)
            for name, prior in _priors(tok, args, size).items():
                runs = []
                for _ in range(args.repeats):
                    path = Path(tmp) / f"{name}{size}.lfq"
                    c = compress_video(
                        TensorSource(frames, fps), path, tok, prior, batch_size=args.batch_size, keep_tokens=True
                    )
                    d = decompress_video(path, None, tok, prior, args.batch_size, keep_video=True)
                    runs.append((c, d))
                c, d = runs[0]
                med = lambda f: statistics.median(f(cr, dr) for cr, dr in runs)  # noqa: E731, B023 (used in this iteration)
                c_total = med(lambda cr, dr: cr.read_seconds + cr.tokenizer_seconds + cr.coding_seconds)
                d_total = med(lambda cr, dr: dr.tokenizer_seconds + dr.coding_seconds)
                ideal = _ideal(prior, c.tokens)
                bound = 1.01 * ideal + STREAM_FLUSH_BITS * c.num_chunks
                rows.append(
                    (
                        size,
                        name,
                        args.frames / c_total,
                        med(lambda cr, dr: cr.tokenizer_seconds),
                        med(lambda cr, dr: cr.coding_seconds),
                        args.frames / d_total,
                        med(lambda cr, dr: dr.tokenizer_seconds),
                        med(lambda cr, dr: dr.coding_seconds),
                        8 * c.payload_bytes / c.num_tokens,
                        8 * c.payload_bytes / ideal - 1,
                        (8 * c.payload_bytes - ideal) / c.num_chunks,
                        8 * c.payload_bytes <= bound,
                        c.bpp,
                    )
                )
    print(
        f"\n{args.frames} frames of carphone_pristine.mp4, batches of {args.batch_size} chunks; load average after "
        f"{os.getloadavg()[0]:.2f}\n"
    )
    print(
        "| size | prior | compress fps | tokenizer s | coding s | decompress fps | tokenizer s | coding s | "
        "bits/token | over ideal | bits/chunk over | within 1 % + 64 b | bpp |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
    for r in rows:
        print(
            f"| {r[0]} × {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.2f} | {r[4]:.2f} | {r[5]:.1f} | {r[6]:.2f} | "
            f"{r[7]:.2f} | {r[8]:.3f} | {100 * r[9]:+.3f} % | {r[10]:.1f} | {'yes' if r[11] else 'NO'} | {r[12]:.4f} |"
        )


if __name__ == "__main__":
    main()
