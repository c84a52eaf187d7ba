"""Binary spherical quantization (BSQ), Zhao et al., "Image and Video Tokenization with Binary Spherical
Quantization" (BSQ-ViT), arXiv 2406.07548, Sec. 3.2-3.3.

LFQ on the unit sphere: the latent is l2-normalized and each channel quantized to ``±1/√d``, so every
code has unit norm and the quantization error is bounded. Bit order and indices are LFQ's (LSB first).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..registry import QUANTIZERS
from .base import QuantizerOutput, straight_through
from .binary import BinaryQuantizer, bits_to_indices, indices_to_bits

__all__ = ["BSQ"]


@QUANTIZERS.register
class BSQ(BinaryQuantizer):
    """Binary spherical quantizer: ``u = z/‖z‖``, ``q = sign(u)/√dim``, vocabulary ``2^dim``.

    Forward: ``z`` of shape ``(B, dim, *S)``, any float dtype (fp32, bf16, fp16; under autocast or not).
    ``u`` normalizes each token over the channel axis; bit ``i`` is ``z_i > 0`` (strict: an exact 0 is
    a 0 bit, code ``−1/√dim``; the sign of ``z`` is the sign of ``u``, taken from ``z`` so an underflow in
    the division can never flip it). Indices are LFQ's, ``Σ_i 2^i · bit_i``. ``quantized`` is the unit-norm
    code ``q`` with a straight-through gradient to ``u``, in the dtype of ``z``; normalization, losses and
    entropies run in float32 with autocast disabled.

    Loss::

        commitment_weight · mean((u − sg(q))²)
        + w_ent(step) · (E_u[H(p(·|u))] − diversity_gamma · H(E_u[p(·|u)]))

    with the soft assignment ``p(c|u) ∝ exp(inv_temperature · ⟨u, c⟩)`` over the ``2^dim`` codes, which
    factorizes into one Bernoulli per bit with logit ``2 · inv_temperature · u_i / √dim`` (the codes differ
    by ``±2/√dim`` on channel ``i``). Entropies are in nats, in ``[0, dim · ln 2]``; the batch entropy is
    exact by default (over every token of the global batch) or BSQ-ViT's grouped upper bound.

    Args:
        dim: number of bits ``d``; ``codebook_size = 2**dim`` (BSQ-ViT: 18).
        entropy_weight: final weight of the entropy penalty (BSQ-ViT: 0.1).
        commitment_weight: weight of the commitment loss (mean over elements, as in LFQ). BSQ-ViT's
            ImageNet configs use 0 here; 0.25 mirrors LFQ.
        diversity_gamma: ``γ``, weight of the batch entropy inside the penalty (BSQ-ViT: 1).
        inv_temperature: ``κ`` in ``p(c|u) ∝ exp(κ⟨u, c⟩)``. Default 2, which is BSQ-ViT's public code
            default: it uses ``softmax(2 · inv_temperature · ⟨u, c⟩)`` with ``inv_temperature = 1``
            (so their value is half of ours). The paper text is ambiguous on the factor.
        entropy_group_size: None for the exact batch entropy (default), or a bit-group size for
            BSQ-ViT's grouped upper bound (their code's default group is 9 bits).
        entropy_anneal_factor: the entropy weight starts at ``factor × entropy_weight`` ...
        entropy_anneal_steps: ... and decays linearly to it over this many steps (0 disables). BSQ-ViT's
            configs ramp their quantizer loss the same way (3×, 2,000 steps).

    Raises:
        ValueError: ``dim`` outside ``[1, 62]``; an input that is not a non-empty, finite ``(B, dim, *S)``
            floating-point tensor (see :meth:`Quantizer.check_input`).
    """

    def __init__(self, dim: int = 18, inv_temperature: float = 2.0, **kwargs: Any) -> None:
        # Only the default that differs from LFQ's; the other arguments pass by keyword (typed from the base).
        super().__init__(dim=dim, inv_temperature=inv_temperature, **kwargs)
        self._scale = 1.0 / math.sqrt(dim)

    def _bits_to_codes(self, bits: Tensor) -> Tensor:
        """``(B, dim, *S)`` bool → float32 codes ``±1/√dim``; shared by forward and lookup."""
        return torch.where(bits, self._scale, -self._scale)

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        bits = self.sign_bits(z)
        indices = bits_to_indices(bits)
        with torch.autocast(z.device.type, enabled=False):
            u = F.normalize(z.float(), dim=1)
            q = self._bits_to_codes(bits)
            commitment = (u - q).pow(2).mean()
            # log p(bit_i = 1) − log p(bit_i = 0) = κ⟨u, c⁺ − c⁻⟩ = 2κ u_i / √d.
            logits = (2.0 * self.inv_temperature * self._scale) * u.movedim(1, -1).reshape(-1, self.dim)
            loss, metrics = self.penalized_loss(logits, commitment)
            quantized = straight_through(u, q)
        return QuantizerOutput(quantized.to(z.dtype), indices, loss, metrics)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """``(B, *S)`` integer ids in ``[0, 2^dim)`` → ``(B, dim, *S)`` float32 unit-norm codes ``±1/√dim``.

        Raises:
            ValueError: as :meth:`Quantizer.check_indices` (non-integer dtype, id outside the vocabulary).
        """
        self.check_indices(indices)
        return self._bits_to_codes(indices_to_bits(indices, self.dim))
