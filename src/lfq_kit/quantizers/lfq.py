"""Lookup-free quantization (LFQ), MAGVIT-v2 (Yu et al., arXiv 2310.05737), Sec. 3.1 and Eq. 4.

Each latent channel is quantized independently to ``±1``; the codebook is the ``2^dim`` corners of the
hypercube, so nothing is looked up and nothing in the codebook is learned.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..registry import QUANTIZERS
from .base import QuantizerOutput, straight_through
from .binary import BinaryQuantizer, annealed_weight, bits_to_indices, indices_to_bits

__all__ = ["LFQ", "annealed_weight", "bits_to_indices", "indices_to_bits"]


@QUANTIZERS.register
class LFQ(BinaryQuantizer):
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
        ValueError: ``dim`` outside ``[1, 62]``; an input that is not a non-empty, finite ``(B, dim, *S)``
            floating-point tensor (see :meth:`Quantizer.check_input`).
    """

    # __init__: BinaryQuantizer's, whose defaults are the paper's LFQ.

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        bits = self.sign_bits(z)  # strict: an exact 0 maps to −1
        q = torch.where(bits, 1.0, -1.0).to(z.dtype)
        indices = bits_to_indices(bits)
        with torch.autocast(z.device.type, enabled=False):
            z32 = z.float()
            commitment = (z32 - q.float()).pow(2).mean()
            # Per-bit logits of p(c|z): −κ‖z−c‖² differs by 4κ·z_i between c_i = +1 and c_i = −1.
            logits = (4.0 * self.inv_temperature) * z32.movedim(1, -1).reshape(-1, self.dim)
            loss, metrics = self.penalized_loss(logits, commitment)
        return QuantizerOutput(straight_through(z, q), indices, loss, metrics)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """``(B, *S)`` integer ids in ``[0, 2^dim)`` → ``(B, dim, *S)`` float32 codes in ``{−1, +1}``.

        Raises:
            ValueError: as :meth:`Quantizer.check_indices` (non-integer dtype, id outside the vocabulary).
        """
        self.check_indices(indices)
        return torch.where(indices_to_bits(indices, self.dim), 1.0, -1.0)
