"""The ``packed`` payload: every token in exactly ``ceil(log2 K)`` bits (18 for LFQ with 2^18 codes), LSB-first,
with no model: ``ceil(N · log2 K / 8)`` bytes for a chunk of ``N`` tokens. The baseline the entropy-coded priors beat.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .prior import TokenPrior

__all__ = ["PackedPrior", "pack_bits", "packed_bytes", "unpack_bits"]


def pack_bits(ids: np.ndarray, bits: int) -> bytes:
    """``(N,)`` non-negative ids below ``2^bits`` → ``ceil(N · bits / 8)`` bytes; bit ``j`` of id ``i`` is bit
    ``i · bits + j`` of the stream, bytes filled from their least significant bit."""
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    if bits == 0:
        return b""
    planes = (ids[:, None] >> np.arange(bits, dtype=np.int64)) & 1
    return np.packbits(planes.astype(np.uint8).reshape(-1), bitorder="little").tobytes()


def unpack_bits(data: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: ``count`` ids of ``bits`` bits → int64 ``(count,)``.

    Raises:
        ValueError: ``data`` is not exactly ``ceil(count · bits / 8)`` bytes.
    """
    if len(data) != packed_bytes(count, bits):
        expected = packed_bytes(count, bits)
        raise ValueError(f"a packed payload of {count} tokens × {bits} bits is {expected} bytes, got {len(data)}")
    if bits == 0:
        return np.zeros(count, dtype=np.int64)
    planes = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little", count=count * bits)
    return (planes.reshape(count, bits).astype(np.int64) << np.arange(bits, dtype=np.int64)).sum(1)


def packed_bytes(count: int, bits: int) -> int:
    """``ceil(count · bits / 8)``."""
    return (count * bits + 7) // 8


class PackedPrior(TokenPrior):
    """Fixed-length codes: ``ceil(log2 K)`` bits per token, no model (identity: sha256 of ``"packed:K"``).

    Raises:
        ValueError: ``codebook_size < 1``.
    """

    kind = "packed"

    def __init__(self, codebook_size: int) -> None:
        if codebook_size < 1:
            raise ValueError(f"codebook_size must be >= 1, got {codebook_size}")
        self.codebook_size = int(codebook_size)
        self.bits = math.ceil(math.log2(self.codebook_size)) if self.codebook_size > 1 else 0

    @property
    def identity(self) -> str:
        return hashlib.sha256(f"packed:{self.codebook_size}".encode()).hexdigest()

    def encode(self, ids: Tensor) -> list[bytes]:
        flat = ids.detach().cpu().long().flatten(1).numpy()
        return [pack_bits(row, self.bits) for row in flat]

    def decode(self, payloads: Sequence[bytes], grid: tuple[int, int, int]) -> Tensor:
        n = math.prod(grid)
        rows = [unpack_bits(p, n, self.bits) for p in payloads]
        return (
            torch.from_numpy(np.stack(rows)).view(len(rows), *grid) if rows else torch.zeros(0, *grid, dtype=torch.long)
        )

    def ideal_bits(self, ids: Tensor) -> list[float]:
        return [float(ids[0].numel() * math.log2(self.codebook_size))] * ids.shape[0]
