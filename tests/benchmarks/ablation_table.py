"""The quantizer ablation table of docs/ablations.md, read from the TensorBoard logs of the runs.

Run the ``lfq-kit fit`` commands of docs/ablations.md first (each logs to ``runs/ablations/<name>``), then::

    python tests/benchmarks/ablation_table.py [runs/ablations]

For each run (the latest ``version_*`` of each name) it prints the last validation epoch's held-out PSNR (dB)
twice: the mean of per-frame PSNR (``val/psnr_per_frame``, the papers' convention) and the PSNR of the pooled
MSE (``val/psnr_pooled``; logs written before the two were split have only ``val/psnr``, which is the pooled
one, and show "n/a" per frame); then SSIM, codebook usage (codes seen in the validation tokens, and the
perplexity of their histogram), the training steps taken and the wall-clock time from the first to the last
logged event, as a Markdown table.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# Row order of the table: the quantizers at 18 bits per token, then the vocabulary sweep.
ORDER = ("lfq", "vq", "fsq", "bsq", "lfq_2e10", "lfq_2e14", "vq_2e10", "vq_2e14")


def codebook_size(name: str) -> int:
    """Vocabulary of a run named after its ablation config: ``<quantizer>[_2e<bits>][_<variant>]``."""
    bits = re.search(r"_2e(\d+)", name)
    return 8**6 if name.startswith("fsq") else 2 ** int(bits.group(1)) if bits else 2**18


def last_scalars(version: Path) -> dict[str, float]:
    """The last value of every scalar tag in one TensorBoard run folder, plus ``steps`` and ``wall_s``."""
    events = EventAccumulator(str(version), size_guidance={"scalars": 0})
    events.Reload()
    out: dict[str, float] = {}
    first, last = math.inf, -math.inf
    for tag in events.Tags()["scalars"]:
        values = events.Scalars(tag)
        out[tag] = values[-1].value
        first, last = min(first, values[0].wall_time), max(last, values[-1].wall_time)
        out["steps"] = max(out.get("steps", 0), values[-1].step)
    out["wall_s"] = last - first
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="runs/ablations", type=Path)
    args = parser.parse_args()
    names = sorted(
        (p.name for p in args.root.iterdir() if p.is_dir()),
        key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n),
    )
    print(
        "| run | vocabulary | per-frame PSNR (dB) | pooled PSNR (dB) | SSIM | codes used | perplexity | steps "
        "| wall (min) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        versions = sorted((args.root / name).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
        if not versions:
            continue
        s = last_scalars(versions[-1])
        size = codebook_size(name)
        used = f"{s['val/codebook_usage'] * size:.0f}" if "val/codebook_usage" in s else "n/a"
        vocab = f"2^{math.log2(size):.4g}"
        per_frame = f"{s['val/psnr_per_frame']:.2f}" if "val/psnr_per_frame" in s else "n/a"
        pooled = s.get("val/psnr_pooled", s.get("val/psnr", math.nan))  # val/psnr: logs from before the split
        print(
            f"| {name} | {vocab} | {per_frame} | {pooled:.2f} | {s.get('val/ssim', math.nan):.3f} | {used} "
            f"| {s.get('val/codebook_perplexity', math.nan):.0f} | {s['steps']:.0f} | {s['wall_s'] / 60:.1f} |"
        )


if __name__ == "__main__":
    main()
