"""What LFQ and BSQ share: sign bits indexed LSB first, and the entropy-penalized loss over the hypercube.

Both quantize each channel by its sign, so the codebook is the ``2^dim`` corners of a (scaled) hypercube,
the soft assignment factorizes into per-bit Bernoullis, and the loss is (MAGVIT-v2, arXiv 2310.05737,
Eq. 4, plus commitment)::

    commitment_weight · commitment + w_ent(step) · (E[H(p(·|z))] − diversity_gamma · H(E[p(·|z)]))
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Quantizer
from .entropy import binary_entropy, code_entropy

__all__ = ["BinaryQuantizer", "annealed_weight", "bits_to_indices", "indices_to_bits"]


def annealed_weight(weight: float, step: Tensor, factor: float, steps: int) -> Tensor:
    """``weight · factor`` at step 0, decaying linearly to ``weight`` at ``steps`` (constant after).

    Open-MAGVIT2's entropy annealing (TencentARC/SEED-Voken, ``lookup_free_quantize.py``); ``steps == 0`` or
    ``factor == 1`` disables it.
    Tensor arithmetic on the step buffer, so no device sync per forward.
    """
    if steps <= 0:
        return torch.full_like(step, weight, dtype=torch.float32)
    frac = (step.float() / steps).clamp(max=1.0)
    return weight * (factor + (1.0 - factor) * frac)


def bits_to_indices(bits: Tensor) -> Tensor:
    """``(B, d, *S)`` bool → ``(B, *S)`` int64, ``index = Σ_i 2^i · bit_i`` (bit 0 is channel 0: LSB first)."""
    weights = 1 << torch.arange(bits.shape[1], device=bits.device, dtype=torch.long)
    return (bits.long() * weights.view(1, -1, *([1] * (bits.ndim - 2)))).sum(1)


def indices_to_bits(indices: Tensor, dim: int) -> Tensor:
    """``(B, *S)`` integer indices → ``(B, dim, *S)`` bool bits, LSB first; inverse of :func:`bits_to_indices`."""
    shifts = torch.arange(dim, device=indices.device, dtype=torch.long).view(1, -1, *([1] * (indices.ndim - 1)))
    return ((indices.long().unsqueeze(1) >> shifts) & 1).bool()


_MAX_EXACT_DIM = 28  # 2^28 float32 = 1 GiB for the mean code distribution


class BinaryQuantizer(Quantizer):
    """Base of sign quantizers with an entropy penalty (LFQ, BSQ); see the subclasses for the arguments (the defaults
    are the paper's LFQ: 18 bits, entropy 0.1, commitment 0.25, γ 1, τ = 0.01).

    Raises:
        ValueError: ``dim`` outside ``[1, 62]`` (indices are int64); ``dim > 28`` with the exact entropy
            (its ``2^dim`` mean distribution would not fit: set ``entropy_group_size``); a group size < 1.
    """

    def __init__(
        self,
        dim: int = 18,
        entropy_weight: float = 0.1,
        commitment_weight: float = 0.25,
        diversity_gamma: float = 1.0,
        inv_temperature: float = 100.0,
        entropy_group_size: int | None = None,
        entropy_anneal_factor: float = 3.0,
        entropy_anneal_steps: int = 2000,
    ) -> None:
        super().__init__()
        if not 1 <= dim <= 62:
            raise ValueError(f"{type(self).__name__} dim must be in [1, 62] (int64 indices), got {dim}")
        if entropy_group_size is None and dim > _MAX_EXACT_DIM:
            raise ValueError(
                f"{type(self).__name__}(dim={dim}): the exact batch entropy needs 2^{dim} floats; above dim "
                f"{_MAX_EXACT_DIM} set entropy_group_size (e.g. 9) for the grouped entropy"
            )
        if entropy_group_size is not None and entropy_group_size < 1:
            raise ValueError(f"entropy_group_size must be None or >= 1, got {entropy_group_size}")
        self.dim = dim
        self.codebook_size = 2**dim
        self.entropy_weight = entropy_weight
        self.commitment_weight = commitment_weight
        self.diversity_gamma = diversity_gamma
        self.inv_temperature = inv_temperature
        self.entropy_group_size = entropy_group_size
        self.entropy_anneal_factor = entropy_anneal_factor
        self.entropy_anneal_steps = entropy_anneal_steps

    @staticmethod
    def sign_bits(z: Tensor) -> Tensor:
        """``(B, dim, *S)`` → bool bits ``z > 0``, strict: an exact 0 is a 0 bit (code −1).

        The one sign rule of forward and :meth:`quantize_indices`, so both give the same indices.
        """
        return z > 0

    def quantize_indices(self, z: Tensor) -> Tensor:
        """``(B, dim, *S)`` → ``(B, *S)`` int64 indices from the sign bits alone (no loss, no entropy).

        Equal to ``forward(z).indices`` in any mode (sign quantizers keep no state).

        Raises:
            ValueError: as :meth:`Quantizer.check_input`.
        """
        self.check_input(z)
        return bits_to_indices(self.sign_bits(z))

    def current_entropy_weight(self) -> Tensor:
        """The entropy weight at the current step (after annealing)."""
        return annealed_weight(self.entropy_weight, self.step, self.entropy_anneal_factor, self.entropy_anneal_steps)

    def penalized_loss(self, bit_logits: Tensor, commitment: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss and metrics from per-bit logits ``(N, dim)`` of the soft assignment and the commitment term.

        Call with autocast disabled and float32 inputs. Entropies in nats; the batch entropy is exact
        (``entropy_group_size`` None) or grouped, over the global batch under ``torch.distributed``.
        """
        per_sample = binary_entropy(bit_logits).sum(-1).mean()
        batch = code_entropy(bit_logits, self.entropy_group_size)
        entropy_penalty = per_sample - self.diversity_gamma * batch
        loss = self.commitment_weight * commitment + self.current_entropy_weight() * entropy_penalty
        metrics = {
            "per_sample_entropy": per_sample.detach(),
            "batch_entropy": batch.detach(),
            "commitment": commitment.detach(),
            "entropy_penalty": entropy_penalty.detach(),
        }
        return loss, metrics
