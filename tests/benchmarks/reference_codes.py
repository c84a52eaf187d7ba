"""Reference codecs for the quickstart's held-out PSNR: what simple codes give on the same validation clips.

Run: ``pip install -e ".[bench]" && python tests/benchmarks/reference_codes.py`` (figures in docs/tokenizer.md).

The validation batch is the quickstart's (4 evenly spaced whole 17 × 64 × 64 clips of ``carphone_pristine.mp4``,
pixels in [−1, 1]); PSNR in dB over the whole batch (peak-to-peak 2). The token-sized codes work on the
``4 × 8 × 8`` tubelets of frames 1–16 (the 4-frame tokens; frame 0 has a token of its own and is left out):

* bicubic: each frame 8× down (antialiased) and back up, i.e. an uncompressed 8 × 8 thumbnail;
* tubelet mean: every pixel replaced by its tubelet's mean colour, as floats and in 6 bits per channel
  (exactly 18 bits per token);
* PCA: the principal components of the tubelets of the training clips (bikes, bigbuckbunny), keeping k
  components as floats, or spending exactly 18 bits as k components × L uniform levels each (between the
  0.5 % and 99.5 % quantiles of the training coefficients), or 18 sign bits reconstructed at each component's
  mean magnitude: how far a linear code gets, and how much the split of the 18 bits matters.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from bench_tokenizer import sample_clips
from einops import rearrange


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    return 10 * math.log10(4.0 / F.mse_loss(x.clamp(-1, 1), y).item())


def tubelets(video: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W), T = 1 + 4k → (B·k·H/8·W/8, 3·4·8·8): the 4-frame tubelets of frames 1 … T − 1."""
    return rearrange(video[:, :, 1:], "b c (t a) (h y) (w x) -> (b t h w) (c a y x)", a=4, y=8, x=8)


def bicubic(val: torch.Tensor) -> float:
    frames = rearrange(val, "b c t h w -> (b t) c h w")
    small = F.interpolate(frames, scale_factor=1 / 8, mode="bicubic", antialias=True)
    return psnr(F.interpolate(small, size=frames.shape[-2:], mode="bicubic"), frames)


def tubelet_mean(patches: torch.Tensor, bits: int | None = None) -> float:
    mean = patches.unflatten(1, (3, -1)).mean(-1, keepdim=True)
    if bits is not None:  # uniform levels over [−1, 1]
        levels = 2**bits - 1
        mean = ((mean + 1) / 2 * levels).round() / levels * 2 - 1
    return psnr(mean.expand(-1, -1, patches.shape[1] // 3).flatten(1), patches)


def main() -> None:
    train, val = sample_clips()
    fit = torch.cat([tubelets(v[:, : 1 + (v.shape[1] - 1) // 4 * 4][None]) for v in train])
    patches = tubelets(val)
    mu = fit.mean(0)
    _, _, basis = torch.pca_lowrank(fit - mu, q=32, center=False)
    rows = [
        ("bicubic 8x down and up (frames 0-16)", bicubic(val)),
        ("tubelet mean, float", tubelet_mean(patches)),
        ("tubelet mean, 6 bits per channel (18 bits)", tubelet_mean(patches, bits=6)),
    ]
    for k in (6, 18):
        v = basis[:, :k]
        rows.append((f"PCA, {k} float components", psnr((patches - mu) @ v @ v.T + mu, patches)))
    for k, levels in ((6, 8), (9, 4), (18, 2)):
        v = basis[:, :k]
        train_c, c = (fit - mu) @ v, (patches - mu) @ v
        if levels == 2:  # a sign bit, reconstructed at the component's mean magnitude
            q = c.sign() * train_c.abs().mean(0)
        else:
            lo, hi = train_c.quantile(0.005, 0), train_c.quantile(0.995, 0)
            step = (hi - lo) / (levels - 1)
            q = ((c.clamp(lo, hi) - lo) / step).round() * step + lo
        rows.append((f"PCA, {k} components x {levels} levels (18 bits)", psnr(q @ v.T + mu, patches)))
    print("| code | held-out PSNR (dB) |\n| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
