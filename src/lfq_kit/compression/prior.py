"""The interface every token prior implements: how a chunk's token ids become a payload and back.

A prior codes each chunk independently (chunks of a video decode in any order, and a damaged chunk damages only
itself); it is batched over chunks of one token grid. Its :attr:`~TokenPrior.identity` (hex sha256) goes in the
file header, so a file decodes only with the prior it was coded with.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from torch import Tensor

__all__ = ["TokenPrior"]


class TokenPrior(ABC):
    """Codes token ids of a tokenizer with vocabulary ``codebook_size``.

    Attributes:
        kind: the header's prior name (``"packed"``, ``"factorized"``, ``"mlm"``).
        codebook_size: vocabulary ``K`` (ids in ``[0, K)``).
        hint: path of the file that holds the prior (stored in the header as advice for decompression), or None.
    """

    kind: str
    codebook_size: int
    hint: str | None = None

    @property
    @abstractmethod
    def identity(self) -> str:
        """Hex sha256 of everything that defines the coding distributions."""

    @property
    def params(self) -> tuple[int, int]:
        """Two integers stored in the header that decoding needs besides :attr:`identity` (default ``(0, 0)``)."""
        return (0, 0)

    def check_grid(self, grid: tuple[int, int, int]) -> None:  # noqa: B027 (an optional check: no-op by default)
        """Raise ``ValueError`` when the prior cannot code a chunk of token grid ``(T', H', W')``."""

    def required_chunk_frames(self) -> int | None:
        """Frames per chunk the prior was trained on (the masked LM's clip length), or None for any."""
        return None

    @abstractmethod
    def encode(self, ids: Tensor) -> list[bytes]:
        """``(B, T', H', W')`` int64 ids of ``B`` chunks → one payload per chunk."""

    @abstractmethod
    def decode(self, payloads: Sequence[bytes], grid: tuple[int, int, int]) -> Tensor:
        """Payloads of ``B`` chunks of token grid ``grid`` → ``(B, T', H', W')`` int64 ids.

        Raises:
            ValueError: a payload that is not a valid coding of ``grid`` tokens.
        """

    @abstractmethod
    def ideal_bits(self, ids: Tensor) -> list[float]:
        """``−Σ log2 p`` of each chunk's ids ``(B, T', H', W')`` under the coding distributions (the bound the
        range coder approaches)."""
