"""Fixed sinusoidal position embeddings over a flattened token sequence (Vaswani et al. 2017; the table VideoMAE,
arXiv 2203.12602, uses for its encoder and decoder)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sinusoid_table"]


def sinusoid_table(num_positions: int, dim: int) -> Tensor:
    """``(1, num_positions, dim)`` float32: channel ``2i`` is ``sin(pos / 10000^(2i/dim))``, ``2i + 1`` its cosine.

    Raises:
        ValueError: a non-positive size or an odd ``dim``.
    """
    if num_positions < 1 or dim < 2 or dim % 2:
        raise ValueError(f"need num_positions >= 1 and an even dim >= 2, got {num_positions}, {dim}")
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    inv = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    angles = position * inv  # (N, dim / 2)
    table = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # sin, cos interleaved
    return table.float()[None]
