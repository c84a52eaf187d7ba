"""MAGVIT-v2 tokenizer, lfq-kit vs magvit2-pytorch, side by side on 2 × 17 × 64 × 64 clips.

Run: ``pip install -e ".[bench]" && python tests/benchmarks/bench_tokenizer.py [--budget 600]``
(figures in docs/benchmarks.md).

Both models: 17 frames → a 5 × 8 × 8 token grid from a 2^18 LFQ vocabulary, matched parameter counts
(magvit2-pytorch's ``init_dim`` is chosen to come closest to lfq-kit's quickstart encoder + decoder; both are
the paper's architecture, so lfq-kit runs without the quickstart's ``tubelet_shortcut`` and token MLP, which
magvit2-pytorch has no counterpart of), L2 + LFQ losses only (no GAN, no perceptual loss), Adam. Each side runs in a
fresh subprocess:

* training step: median of 3 forward + backward + Adam steps after a warm-up;
* encode / decode throughput in frames per second (eval mode, no grad);
* peak memory: growth of the peak RSS over those (Linux ``clear_refs`` + ``VmHWM``);
* with ``--budget S > 0``: held-out PSNR (dB, on ``carphone_pristine.mp4``, 4 evenly spaced whole
  17 × 64 × 64 clips) after training for S seconds of wall clock on random clips of the two other bundled
  sample videos, with the quickstart's recipe by default (``configs/quickstart.yaml``): random
  ``--frames`` × ``--crop`` × ``--crop`` windows (9 × 32 × 32; magvit2-pytorch checks its input size, so its
  ``image_size`` is switched between training and evaluation), batches of 2, Adam with ``--lr`` 2e-3, 20
  warm-up steps and a cosine decay to zero over the wall-clock budget, no gradient clipping.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from rss import peak_rss, reset_peak_rss

T, SIZE, BATCH = 17, 64, 2
QUICKSTART = dict(
    base_channels=16,
    channel_multipliers=(1, 2, 2, 4),
    num_res_blocks=1,
    temporal_downsample=(False, True, True),
    num_groups=8,
)
THEIR_LAYERS = (
    "residual",
    "compress_space",
    "residual",
    "compress_space",
    "residual",
    "compress_space",
    "compress_time",
    "compress_time",
)


class Ours(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        from lfq_kit.backbones import Magvit2Decoder, Magvit2Encoder
        from lfq_kit.quantizers import LFQ

        self.encoder = Magvit2Encoder(out_channels=18, **QUICKSTART)
        self.decoder = Magvit2Decoder(in_channels=18, **QUICKSTART)
        self.quantizer = LFQ(18, inv_temperature=2.0, entropy_anneal_steps=0)  # the quickstart's temperature

    def loss(self, video):
        out = self.quantizer(self.encoder(video))
        return F.mse_loss(self.decoder(out.quantized), video) + out.loss

    def encode(self, video):
        return self.quantizer(self.encoder(video)).indices

    def decode(self, indices):
        return self.decoder(self.quantizer.indices_to_codes(indices))


def theirs_model(init_dim: int):
    from magvit2_pytorch import VideoTokenizer

    return VideoTokenizer(
        image_size=SIZE,
        init_dim=init_dim,
        codebook_size=2**18,
        layers=THEIR_LAYERS,
        use_gan=False,
        perceptual_loss_weight=0.0,
        flash_attn=False,
    )


class Theirs(torch.nn.Module):
    def __init__(self, init_dim: int) -> None:
        super().__init__()
        self.model = theirs_model(init_dim)

    def parameters(self, recurse: bool = True):
        return self.model.parameters()  # the tokenizer's own (magvit2-pytorch leaves out its discriminator)

    def loss(self, video):
        self.model.image_size = video.shape[-1]
        return self.model(video, return_loss=True)[0]

    def encode(self, video):
        self.model.image_size = video.shape[-1]  # only checked against the input, see the module docstring
        return self.model(video, return_codes=True)

    def decode(self, indices):
        return self.model.decode_from_code_indices(indices)


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def matched_init_dim(target: int) -> int:
    return min(range(8, 65, 4), key=lambda d: abs(num_params(theirs_model(d)) - target))


def sample_clips():
    """Training videos and the held-out validation batch, decoded once, (3, T, 64, 64) in [-1, 1]."""
    from lfq_kit.data import probe_video, read_frames, sample_clip_dir
    from lfq_kit.data.transforms import ClipTransform

    folder = sample_clip_dir()

    def load(name):
        info = probe_video(folder / name)
        return ClipTransform(SIZE)(read_frames(folder / name, range(info.num_frames), start_pts=info.start_pts))

    train = [load("bikes.mp4"), load("bigbuckbunny.mp4")]
    val = load("carphone_pristine.mp4")
    starts = torch.linspace(0, val.shape[1] - T, 4).long().tolist()
    return train, torch.stack([val[:, s : s + T] for s in starts])


def held_out_psnr(model, val) -> float:
    model.eval()
    with torch.no_grad():
        recon = model.decode(model.encode(val)).clamp(-1, 1)
    model.train()
    return 10 * math.log10(4.0 / F.mse_loss(recon, val).item())


def run_side(side: str, init_dim: int, budget: float, frames: int = 9, crop: int = 32, lr: float = 2e-3) -> dict:
    torch.manual_seed(0)
    model = Ours() if side == "lfq_kit" else Theirs(init_dim)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    video = torch.rand(BATCH, 3, T, SIZE, SIZE) * 2 - 1

    def step(x):
        opt.zero_grad(set_to_none=True)
        model.loss(x).backward()
        opt.step()

    before = reset_peak_rss()
    step(video)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        step(video)
        times.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        t0 = time.perf_counter()
        indices = model.encode(video)
        t_enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.decode(indices)
        t_dec = time.perf_counter() - t0
    model.train()
    result = {
        "params": num_params(model),
        "grid": list(indices.shape[1:]),
        "step_s": statistics.median(times),
        "encode_fps": BATCH * T / t_enc,
        "decode_fps": BATCH * T / t_dec,
        "peak_bytes": peak_rss() - before,
    }
    if budget > 0:
        train, val = sample_clips()
        torch.manual_seed(0)
        model = Ours() if side == "lfq_kit" else Theirs(init_dim)  # fresh weights for the budgeted run
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.99))
        steps, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < budget:
            for group in opt.param_groups:
                group["lr"] = lr * min(1.0, (steps + 1) / 20) * 0.5 * (1 + math.cos(math.pi * elapsed / budget))
            clips = []
            for _ in range(BATCH):
                v = train[int(torch.randint(len(train), ()))]
                t, y, x = (
                    int(torch.randint(n, ())) for n in (v.shape[1] - frames + 1, SIZE - crop + 1, SIZE - crop + 1)
                )
                clips.append(v[:, t : t + frames, y : y + crop, x : x + crop])
            step(torch.stack(clips))
            steps += 1
        result.update(budget_steps=steps, held_out_psnr=held_out_psnr(model, val))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.0, help="seconds of training per side for the PSNR")
    parser.add_argument("--frames", type=int, default=9, help="frames of a training clip (1 + 4k)")
    parser.add_argument("--crop", type=int, default=32, help="training window side in pixels (multiple of 8)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "INIT_DIM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_side(args.child[0], int(args.child[1]), args.budget, args.frames, args.crop, args.lr)))
        return
    init_dim = matched_init_dim(num_params(Ours()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; magvit2-pytorch init_dim {init_dim}")
    header = f"{'side':<16} {'params':>9} {'grid':>9} {'step s':>7} {'enc fr/s':>9} {'dec fr/s':>9} {'MiB':>6}"
    if args.budget > 0:
        header += f" {'steps':>6} {'PSNR dB':>8}"
    print(header)
    for side in ("lfq_kit", "magvit2_pytorch"):
        cmd = [
            sys.executable,
            __file__,
            "--budget",
            str(args.budget),
            "--frames",
            str(args.frames),
            "--crop",
            str(args.crop),
            "--lr",
            str(args.lr),
            "--child",
            side,
            str(init_dim),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{side} failed ({out.returncode}): {out.stderr[-800:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        line = (
            f"{side:<16} {r['params'] / 1e6:8.2f}M {'x'.join(map(str, r['grid'])):>9} {r['step_s']:7.2f} "
            f"{r['encode_fps']:9.1f} {r['decode_fps']:9.1f} {r['peak_bytes'] / 2**20:6.0f}"
        )
        if args.budget > 0:
            line += f" {r['budget_steps']:6d} {r['held_out_psnr']:8.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
