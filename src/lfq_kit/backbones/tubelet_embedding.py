"""Tubelet embedding of a video ViT: a 3D convolution whose kernel equals its stride (VideoMAE, arXiv 2203.12602,
Sec. 3.2), optionally with a separate ``1 × p × p`` patch for the first frame so that the ViT grid lines up with a
causal tokenizer's token grid (MAGVIT-v2, arXiv 2310.05737: the first frame is encoded alone).

Grid of a ``T × H × W`` clip with tubelet ``t × p × p``: ``(T / t, H / p, W / p)``; with ``first_frame_patch``:
``(1 + (T − 1) / t, H / p, W / p)``, e.g. 17 × 128 × 128 with 4 × 8 × 8 → 5 × 16 × 16, the grid of the
MAGVIT-v2 tokenizer (4× causal temporal, 8× spatial compression).

Weights trained on normalized pixels (VideoMAE: ``(pixel − ImageNet mean) / ImageNet std`` of pixels in
``[0, 1]``) take lfq-kit's ``[−1, 1]`` clips once :func:`fold_input_normalization` has folded that per-channel
affine map into the convolution (the kernel equals the stride and there is no padding, so the fold is exact up to
float rounding); the model itself has a single code path.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TubeletEmbedding", "fold_input_normalization", "tubelet_grid"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel (RGB) mean of pixels in ``[0, 1]`` that VideoMAE (MCG-NJU ``datasets.py``, transformers
``VideoMAEForPreTraining``) subtracts before the tubelet embedding."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel (RGB) standard deviation VideoMAE divides by after subtracting :data:`IMAGENET_MEAN`."""


def tubelet_grid(
    clip_size: tuple[int, int, int], tubelet_size: int, patch_size: int, first_frame_patch: bool = False
) -> tuple[int, int, int]:
    """The token grid ``(T', H', W')`` of a ``(T, H, W)`` clip.

    Raises:
        ValueError: a clip size the tubelet does not tile (the message gives the rule and the size).
    """
    t, h, w = (int(v) for v in clip_size)
    frames = t - 1 if first_frame_patch else t
    rule = "1 + a multiple of" if first_frame_patch else "a multiple of"
    if min(tubelet_size, patch_size) < 1 or frames < (0 if first_frame_patch else 1) or frames % tubelet_size:
        raise ValueError(f"clip length T={t} must be {rule} tubelet_size={tubelet_size}")
    if h < 1 or w < 1 or h % patch_size or w % patch_size:
        raise ValueError(f"clip height and width {h} x {w} must be positive multiples of patch_size={patch_size}")
    return (frames // tubelet_size + (1 if first_frame_patch else 0), h // patch_size, w // patch_size)


def fold_input_normalization(
    weight: Tensor, bias: Tensor, mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD
) -> tuple[Tensor, Tensor]:
    """Fold ``n = ((x + 1) / 2 − mean) / std`` into a stride-equals-kernel convolution, so that the new one applied
    to ``x`` in ``[−1, 1]`` gives what the old one gives on ``n``.

    With ``a_c = 1 / (2 std_c)`` and ``b_c = (1 − 2 mean_c) / (2 std_c)``: ``n_c = a_c x_c + b_c``, hence
    ``W'[o, c] = a_c W[o, c]`` and ``bias'[o] = bias[o] + Σ_{c, k} W[o, c, k] b_c``. Computed in float64, returned
    in the input dtype.

    Args:
        weight: ``(dim, C, t, p, p)`` convolution weight; bias: ``(dim,)``.
        mean, std: per-channel statistics of pixels in ``[0, 1]`` (``C`` values each).

    Raises:
        ValueError: ``mean`` / ``std`` not ``C`` values, or a non-positive ``std``.
    """
    c = weight.shape[1]
    if len(mean) != c or len(std) != c or min(std) <= 0:
        raise ValueError(f"need {c} means and {c} positive stds, got mean {mean}, std {std}")
    w = weight.double()
    s = torch.tensor(std, dtype=torch.float64)
    m = torch.tensor(mean, dtype=torch.float64)
    scale = (0.5 / s).view(1, c, *([1] * (w.ndim - 2)))
    shift = (1 - 2 * m) / (2 * s)
    new_bias = bias.double() + (w.flatten(2).sum(-1) * shift).sum(-1)
    return (w * scale).to(weight.dtype), new_bias.to(bias.dtype)


class TubeletEmbedding(nn.Module):
    """``(B, C, T, H, W)`` float → ``(B, N, dim)`` tokens in ``(t, h, w)`` raster order, ``N = T'·H'·W'``.

    Args:
        in_channels: pixel channels ``C``.
        dim: token width.
        tubelet_size: frames per tubelet ``t``.
        patch_size: pixels per tubelet along H and W ``p``.
        first_frame_patch: embed frame 0 alone with a ``1 × p × p`` convolution of its own (causal grids).
    """

    def __init__(
        self,
        in_channels: int = 3,
        dim: int = 768,
        tubelet_size: int = 2,
        patch_size: int = 16,
        first_frame_patch: bool = False,
    ) -> None:
        super().__init__()
        self.tubelet_size = tubelet_size
        self.patch_size = patch_size
        self.first_frame_patch = first_frame_patch
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, dim, kernel, stride=kernel)
        self.first = (
            nn.Conv3d(in_channels, dim, (1, patch_size, patch_size), stride=(1, patch_size, patch_size))
            if first_frame_patch
            else None
        )

    def forward(self, video: Tensor) -> Tensor:
        if video.ndim != 5:
            raise ValueError(f"TubeletEmbedding expects (B, C, T, H, W), got shape {tuple(video.shape)}")
        tubelet_grid(video.shape[2:], self.tubelet_size, self.patch_size, self.first_frame_patch)
        if self.first is None:
            return self.proj(video).flatten(2).transpose(1, 2)
        parts = [self.first(video[:, :, :1])]
        if video.shape[2] > 1:
            parts.append(self.proj(video[:, :, 1:]))
        return torch.cat(parts, dim=2).flatten(2).transpose(1, 2)
