"""VideoMAE's normalized pixel targets (arXiv 2203.12602; ``engine_for_pretraining.py``): the clip cut into the
encoder's tubelets, each normalized per channel over its ``t·p·p`` values with the mean and the unbiased standard
deviation plus 1e-6 (``(x − mean) / (std + 1e-6)``; a constant tubelet gives exactly 0, not NaN).

The statistics are computed in float64 (and the result rounded to float32 once): in float32 the mean of a constant
tubelet is off by rounding for most pixel levels, and ``(x − mean) / (0 + 1e-6)`` turned that into targets up to
0.36 where 0 was meant. In float64 the sum of up to 2^29 copies of a float32 value is exact, so the mean equals the
value and a constant tubelet gives exactly 0.

Layout of a target: ``(t, p, p, C)`` flattened, ``t·p·p·C`` values per token. With a first-frame patch
(``1 × p × p``, see :mod:`lfq_kit.backbones.tubelet_embedding`) that token's normalized ``p·p·C`` values are
repeated ``t`` times, so every token has the same target width and the first frame weighs as much per pixel as
the others.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["normalized_tubelets", "tubelets"]


def tubelets(video: Tensor, tubelet_size: int, patch_size: int) -> Tensor:
    """``(B, C, T, H, W)`` → ``(B, N, t·p·p, C)`` raw tubelets in ``(t, h, w)`` raster order."""
    b, c, t, h, w = video.shape
    tt, p = tubelet_size, patch_size
    x = video.reshape(b, c, t // tt, tt, h // p, p, w // p, p)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # b, T', H', W', tt, p, p, c
    return x.reshape(b, (t // tt) * (h // p) * (w // p), tt * p * p, c)


def _normalize(x: Tensor) -> Tensor:
    """Per-channel normalization over dim -2 in float64, returned as float32."""
    if x.shape[-2] < 2:
        raise ValueError("a tubelet needs at least 2 values per channel for an unbiased standard deviation")
    device = x.device
    x = (x.cpu() if device.type == "mps" else x).double()  # MPS has no float64
    out = (x - x.mean(dim=-2, keepdim=True)) / (x.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
    return out.float().to(device)


def normalized_tubelets(video: Tensor, tubelet_size: int, patch_size: int, first_frame_patch: bool = False) -> Tensor:
    """Per-tubelet, per-channel normalized pixels: ``(B, C, T, H, W)`` float → ``(B, N, t·p·p·C)`` float32
    (statistics in float64; on Apple's MPS, which has no float64, they are computed on the CPU).

    Raises:
        ValueError: a tubelet with fewer than 2 values per channel.
    """
    if not first_frame_patch:
        return _normalize(tubelets(video, tubelet_size, patch_size)).flatten(2)
    first = _normalize(tubelets(video[:, :, :1], 1, patch_size))  # (B, H'W', p·p, C)
    rest = _normalize(tubelets(video[:, :, 1:], tubelet_size, patch_size))  # (B, (T'−1)H'W', t·p·p, C)
    first = first.repeat(1, 1, tubelet_size, 1)  # the t copies line up with the (t, p, p) layout
    return torch.cat([first, rest], dim=1).flatten(2)
