"""Tubelet embedding of a video ViT: a 3D convolution whose kernel equals its stride (VideoMAE, arXiv 2203.12602,
Sec. 3.2), optionally with a separate ``1 × p × p`` patch for the first frame so that the ViT grid lines up with a
causal tokenizer's token grid (MAGVIT-v2, arXiv 2310.05737: the first frame is encoded alone).

Grid of a ``T × H × W`` clip with tubelet ``t × p × p``: ``(T / t, H / p, W / p)``; with ``first_frame_patch``:
``(1 + (T − 1) / t, H / p, W / p)``, e.g. 17 × 128 × 128 with 4 × 8 × 8 → 5 × 16 × 16, the grid of the
MAGVIT-v2 tokenizer (4× causal temporal, 8× spatial compression).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["TubeletEmbedding", "tubelet_grid"]


def tubelet_grid(clip_size: tuple[int, int, int], tubelet_size: int, patch_size: int,
                 first_frame_patch: bool = False) -> tuple[int, int, int]:  # fmt: skip
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


class TubeletEmbedding(nn.Module):
    """``(B, C, T, H, W)`` float → ``(B, N, dim)`` tokens in ``(t, h, w)`` raster order, ``N = T'·H'·W'``.

    Args:
        in_channels: pixel channels ``C``.
        dim: token width.
        tubelet_size: frames per tubelet ``t``.
        patch_size: pixels per tubelet along H and W ``p``.
        first_frame_patch: embed frame 0 alone with a ``1 × p × p`` convolution of its own (causal grids).
    """

    def __init__(self, in_channels: int = 3, dim: int = 768, tubelet_size: int = 2, patch_size: int = 16,
                 first_frame_patch: bool = False) -> None:  # fmt: skip
        super().__init__()
        self.tubelet_size = tubelet_size
        self.patch_size = patch_size
        self.first_frame_patch = first_frame_patch
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_channels, dim, kernel, stride=kernel)
        self.first = (nn.Conv3d(in_channels, dim, (1, patch_size, patch_size), stride=(1, patch_size, patch_size))
                      if first_frame_patch else None)  # fmt: skip

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
