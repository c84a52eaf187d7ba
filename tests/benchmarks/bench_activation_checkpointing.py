"""Peak memory of one training step of ``configs/ucf101.yaml``'s tokenizer with and without activation checkpointing.

Run: ``python tests/benchmarks/bench_activation_checkpointing.py [--size 64] [--frames 17] [--batch 1]``

The model is the config's (MAGVIT-v2 encoder/decoder at base 128, LFQ-18, StyleGAN discriminator, GAN on from the
first step so lazy R1 runs too) except the perceptual loss, whose ResNet-50 weights would have to be downloaded.
One step is one generator and one discriminator optimizer step (``Trainer(max_steps=2)``) in fp32 on the CPU. Each
setting runs in a fresh subprocess; the figure is the growth of the peak RSS over the step (Linux ``clear_refs`` +
``VmHWM``), plus the step's wall time. ``activation_checkpointing`` recomputes the encoder's and decoder's
residual blocks in backward; the discriminator is not checkpointed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "ucf101.yaml"


def _measure(size: int, frames: int, batch: int, checkpointing: bool) -> dict:
    import lightning as L
    import torch
    import yaml
    from rss import peak_rss, reset_peak_rss
    from torch.utils.data import DataLoader

    from lfq_kit.backbones import Magvit2Decoder, Magvit2Encoder, StyleGANDiscriminator3d
    from lfq_kit.models import VideoTokenizer
    from lfq_kit.quantizers import LFQ

    args = yaml.safe_load(CONFIG.read_text())["model"]["init_args"]
    init = lambda key: dict(args[key].get("init_args", {}))  # noqa: E731
    torch.manual_seed(0)
    model = VideoTokenizer(
        Magvit2Encoder(**init("encoder"), activation_checkpointing=checkpointing),
        Magvit2Decoder(**init("decoder"), activation_checkpointing=checkpointing),
        quantizer=lambda dim: LFQ(dim, **init("quantizer")),
        discriminator=StyleGANDiscriminator3d(**init("discriminator")),
        disc_start=0,
        r1_every=args["r1_every"],
        r1_weight=args["r1_weight"],
        lecam_weight=args["lecam_weight"],
        ema_decay=args["ema_decay"],
        gradient_clip_val=args["gradient_clip_val"],
    )
    video = torch.rand(batch, 3, frames, size, size) * 2 - 1
    loader = DataLoader([{"video": v} for v in video], batch_size=batch)
    trainer = L.Trainer(
        accelerator="cpu",
        precision="32-true",
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    base = reset_peak_rss()
    start = time.perf_counter()
    trainer.fit(model, loader)
    seconds = time.perf_counter() - start
    return {
        "activation_checkpointing": checkpointing,
        "clip": [frames, size, size],
        "batch": batch,
        "peak_rss_gb": peak_rss() / 1e9,
        "step_growth_gb": (peak_rss() - base) / 1e9,
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="H = W of the clip (the config's is 128)")
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        print(json.dumps(_measure(opts.size, opts.frames, opts.batch, opts.child == "on")))
        return
    here = Path(__file__).resolve().parent
    for setting in ("off", "on"):
        cmd = [
            sys.executable,
            __file__,
            "--size",
            str(opts.size),
            "--frames",
            str(opts.frames),
            "--batch",
            str(opts.batch),
            "--child",
            setting,
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=here, check=True).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(
            f"activation_checkpointing={setting:3s}  clip {row['batch']}x{'x'.join(map(str, row['clip']))}  "
            f"peak RSS {row['peak_rss_gb']:.2f} GB (step +{row['step_growth_gb']:.2f} GB)  {row['seconds']:.0f} s"
        )


if __name__ == "__main__":
    main()
