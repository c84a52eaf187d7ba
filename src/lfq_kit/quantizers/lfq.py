"""Lookup-free quantization (LFQ), MAGVIT-v2 (Yu et al., arXiv 2310.05737), Sec. 3.1 and Eq. 4.

Each latent channel is quantized independently to ``±1``; the codebook is the ``2^dim`` corners of the
hypercube, so nothing is looked up and nothing in the codebook is learned.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..registry import QUANTIZERS
from .base import Quantizer, QuantizerOutput, straight_through
from .entropy import binary_entropy, code_entropy

__all__ = ["LFQ", "annealed_weight", "bits_to_indices", "indices_to_bits"]


def annealed_weight(weight: float, step: Tensor, factor: float, steps: int) -> Tensor:
    """``weight · factor`` at step 0, decaying linearly to ``weight`` at ``steps`` (constant after).

    Open-MAGVIT2's entropy annealing (reference Sec. 1); ``steps == 0`` or ``factor == 1`` disables it.
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


@QUANTIZERS.register
class LFQ(Quantizer):
    """Lookup-free quantizer: ``q(z)_i = +1 if z_i > 0 else −1``, vocabulary ``2^dim``.

    Forward: ``z`` of shape ``(B, dim, *S)``, any float dtype (fp32, bf16, fp16; under autocast or not).
    The entropy terms, softmax and index arithmetic run in float32; ``quantized`` has the dtype of ``z``.

    Loss (Eq. 4 plus commitment)::

        commitment_weight · mean((z − sg(q))²)
        + w_ent(step) · (E_z[H(p(·|z))] − diversity_gamma · H(E_z[p(·|z)]))

    with ``p(c|z) = softmax_c(−inv_temperature · ‖z − c‖²)``. Both entropies are in nats and lie in
    ``[0, ln K]``, so the entropy term lies in ``[−γ ln K, ln K]`` (negative values are expected).
    The batch entropy averages over every token of the (global, under DDP) batch.

    Args:
        dim: number of bits ``d``; ``codebook_size = 2**dim`` (18 in the paper).
        entropy_weight: final weight of the entropy penalty (paper: 0.1).
        commitment_weight: weight of the commitment loss (paper: 0.25).
        diversity_gamma: ``γ``, weight of the batch entropy inside the penalty (paper: 1).
        inv_temperature: ``1 / τ`` of the soft assignment (paper: τ = 0.01).
        entropy_group_size: None for the exact batch entropy (default), or a bit-group size for the
            grouped upper bound of BSQ-ViT.
        entropy_anneal_factor: the entropy weight starts at ``factor × entropy_weight`` ...
        entropy_anneal_steps: ... and decays linearly to it over this many steps (0 disables annealing).
            The step comes from :meth:`Quantizer.set_step`, which the training modules call.

    Raises:
        ValueError: ``dim`` outside ``[1, 62]``; an input that is not ``(B, dim, *S)`` floating point.
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
            raise ValueError(f"LFQ dim must be in [1, 62] (int64 indices), got {dim}")
        self.dim = dim
        self.codebook_size = 2**dim
        self.entropy_weight = entropy_weight
        self.commitment_weight = commitment_weight
        self.diversity_gamma = diversity_gamma
        self.inv_temperature = inv_temperature
        self.entropy_group_size = entropy_group_size
        self.entropy_anneal_factor = entropy_anneal_factor
        self.entropy_anneal_steps = entropy_anneal_steps

    def current_entropy_weight(self) -> Tensor:
        """The entropy weight at the current step (after annealing)."""
        return annealed_weight(self.entropy_weight, self.step, self.entropy_anneal_factor, self.entropy_anneal_steps)

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        bits = z > 0  # strict: an exact 0 maps to −1
        q = torch.where(bits, 1.0, -1.0).to(z.dtype)
        indices = bits_to_indices(bits)
        with torch.autocast(z.device.type, enabled=False):
            z32 = z.float()
            commitment = (z32 - q.float()).pow(2).mean()
            # Per-bit logits of p(c|z): −κ‖z−c‖² differs by 4κ·z_i between c_i = +1 and c_i = −1.
            logits = (4.0 * self.inv_temperature) * z32.movedim(1, -1).reshape(-1, self.dim)
            per_sample = binary_entropy(logits).sum(-1).mean()
            batch = code_entropy(logits, self.entropy_group_size)
            entropy_penalty = per_sample - self.diversity_gamma * batch
            loss = self.commitment_weight * commitment + self.current_entropy_weight() * entropy_penalty
        metrics = {
            "per_sample_entropy": per_sample.detach(),
            "batch_entropy": batch.detach(),
            "commitment": commitment.detach(),
            "entropy_penalty": entropy_penalty.detach(),
        }
        return QuantizerOutput(straight_through(z, q), indices, loss, metrics)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """``(B, *S)`` int64 → ``(B, dim, *S)`` float32 codes in ``{−1, +1}``."""
        return torch.where(indices_to_bits(indices, self.dim), 1.0, -1.0)
