"""Tube masking (VideoMAE, arXiv 2203.12602, Sec. 3.3): one random spatial mask per sample, repeated in every
frame of the token grid, so a masked position hides the same place in all frames and motion cannot leak it.

Invariant 19: exactly ``int(ratio · H'·W')`` positions are masked per frame, the same count in every sample, so
the visible tokens of a batch form a dense ``(B, M)`` index tensor without padding.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["TubeMask", "tube_mask"]


class TubeMask(NamedTuple):
    """A batch of tube masks over a ``(T', H', W')`` grid, tokens in ``(t, h, w)`` raster order.

    Attributes:
        mask: ``(B, N)`` bool, True where masked.
        visible: ``(B, N − K)`` int64 indices of the visible tokens, ascending.
        masked: ``(B, K)`` int64 indices of the masked tokens, ascending.
    """

    mask: Tensor
    visible: Tensor
    masked: Tensor


def tube_mask(
    batch: int,
    grid: tuple[int, int, int],
    ratio: float,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> TubeMask:
    """Draw ``batch`` tube masks masking ``int(ratio · H'·W')`` positions of each frame.

    Raises:
        ValueError: ``ratio`` outside ``[0, 1)``, or one that masks every or no position of a frame where that
            leaves nothing to encode or to predict.
    """
    t, h, w = grid
    per_frame = int(ratio * h * w)
    if not 0.0 <= ratio < 1.0 or not 0 < per_frame < h * w:
        raise ValueError(
            f"mask ratio {ratio} masks {per_frame} of the {h * w} positions per frame; it must leave "
            "at least one visible and one masked position"
        )
    scores = torch.rand(batch, h * w, device=device, generator=generator)
    rank = scores.argsort(dim=1).argsort(dim=1)  # a uniformly random permutation's ranks
    spatial = rank < per_frame  # (B, H'W'), exactly per_frame True per row
    mask = spatial.repeat(1, t)  # (B, T'H'W'), frame-major raster order
    order = mask.to(torch.uint8).argsort(dim=1, stable=True)  # visible (0) first, each part ascending
    n_visible = t * (h * w - per_frame)
    return TubeMask(mask, order[:, :n_visible], order[:, n_visible:])
