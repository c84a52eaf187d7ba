"""Anti-aliased downsampling by 2 with a fixed binomial filter (Zhang 2019; StyleGAN2's ``[1, 3, 3, 1]``).

Used by the StyleGAN discriminator's ResBlockDown (MAGVIT-v2, arXiv 2310.05737, discriminator in the
appendix). The filter is normalized (sums to 1) and borders are padded by replication, so a constant input
stays exactly constant. An axis of size 1 (a single frame) is left alone instead of pooled.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BlurPool2d", "BlurPool3d", "binomial_filter"]


def binomial_filter(size: int) -> Tensor:
    """Row ``size − 1`` of Pascal's triangle, normalized: ``3 → [1, 2, 1]/4``, ``4 → [1, 3, 3, 1]/8``; float32.

    Raises:
        ValueError: ``size < 2``.
    """
    if size < 2:
        raise ValueError(f"blur filter size must be ≥ 2, got {size}")
    row = torch.tensor([math.comb(size - 1, i) for i in range(size)], dtype=torch.float32)
    return row / row.sum()


class _BlurPool(nn.Module):
    spatial_ndim: int

    def __init__(self, filter_size: int = 4) -> None:
        super().__init__()
        self.filter_size = filter_size
        self.register_buffer("filter_1d", binomial_filter(filter_size), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != self.spatial_ndim + 2:
            raise ValueError(f"{type(self).__name__} expects a {self.spatial_ndim + 2}-D input, got {tuple(x.shape)}")
        sizes = x.shape[2:]
        pooled = [n > 1 for n in sizes]
        one = self.filter_1d.new_ones(1)
        kernel = None
        for p in pooled:  # separable kernel as an outer product; identity ([1]) on axes that are not pooled
            k = self.filter_1d if p else one
            kernel = k if kernel is None else kernel[..., None] * k
        # total padding k − 2 gives n // 2 outputs; F.pad lists the last axis first
        k = self.filter_size
        pads: list[int] = []
        for p in reversed(pooled):
            pads += [(k - 1) // 2, (k - 2) // 2] if p else [0, 0]
        x = F.pad(x, pads, mode="replicate")
        c = x.shape[1]
        weight = kernel.to(x.dtype).expand(c, 1, *kernel.shape)
        conv = F.conv3d if self.spatial_ndim == 3 else F.conv2d
        return conv(x, weight, stride=[2 if p else 1 for p in pooled], groups=c)

    def extra_repr(self) -> str:
        return f"filter_size={self.filter_size}"


class BlurPool2d(_BlurPool):
    """Binomial blur then stride 2: ``(B, C, H, W) → (B, C, H // 2, W // 2)`` (an axis of size 1 stays 1).

    Args:
        filter_size: taps of the binomial filter (3: ``[1, 2, 1]``, 4: ``[1, 3, 3, 1]``).

    Raises:
        ValueError: ``filter_size < 2``; an input that is not 4-D.
    """

    spatial_ndim = 2


class BlurPool3d(_BlurPool):
    """Binomial blur then stride 2 on T, H and W: ``(B, C, T, H, W) → (B, C, T // 2, H // 2, W // 2)``.

    An axis of size 1 is neither blurred nor strided, so a single frame (``T == 1``) stays one frame and the
    clip keeps being pooled in space: ``17 → 8 → 4 → 2 → 1 → 1``. Non-causal (the blur reads the next frame).

    Args:
        filter_size: taps of the binomial filter (3: ``[1, 2, 1]``, 4: ``[1, 3, 3, 1]``).

    Raises:
        ValueError: ``filter_size < 2``; an input that is not 5-D.
    """

    spatial_ndim = 3
