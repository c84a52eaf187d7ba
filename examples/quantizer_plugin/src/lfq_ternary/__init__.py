"""Example lfq-kit plugin: each latent channel quantized to {−1, 0, +1} (a 3-level FSQ without the bound)."""

from __future__ import annotations

import torch
from torch import Tensor

from lfq_kit.quantizers import Quantizer, QuantizerOutput, straight_through

__all__ = ["TernaryQuantizer"]


class TernaryQuantizer(Quantizer):
    """``q(z)_i = clamp(round(z_i), −1, 1)``; vocabulary ``3^dim``, index digit ``q_i + 1`` in base 3 (channel 0 first).

    Args:
        dim: channels per token.
        commitment_weight: weight of ``mean((z − sg(q))²)``.
    """

    def __init__(self, dim: int = 8, commitment_weight: float = 0.25) -> None:
        super().__init__()
        self.dim = dim
        self.codebook_size = 3**dim
        self.commitment_weight = commitment_weight
        self.register_buffer("_powers", 3 ** torch.arange(dim), persistent=False)

    def _shape(self, ndim: int) -> tuple[int, ...]:
        return (1, self.dim) + (1,) * (ndim - 2)

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        q = z.detach().round().clamp(-1, 1)
        indices = ((q.long() + 1) * self._powers.view(self._shape(z.ndim))).sum(1)
        commitment = (z.float() - q.float()).pow(2).mean()
        return QuantizerOutput(
            straight_through(z, q), indices, self.commitment_weight * commitment, {"commitment": commitment.detach()}
        )

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        digits = (indices.unsqueeze(1) // self._powers.view(self._shape(indices.ndim + 1))) % 3
        return (digits - 1).float()
