"""The masked LM's training-loss recipe (MaskGIT, arXiv 2202.04200; MAGVIT, arXiv 2212.05199,
google-research/magvit ``videogvt/train_lib/maskgvt_train_lib.py`` and its UCF-101 config; MAGVIT-v2,
arXiv 2310.05737, Sec. 4).

Every setting is a :class:`lfq_kit.models.MaskedLM` argument; their defaults keep lfq-kit's first recipe (masked
positions only, normalized per token, one mask ratio per example, label smoothing 0.1).

- Which positions count, with which weight: MAGVIT's ``weight_mode`` ``"mask+refine+recons"`` scores every position
  with a weight per kind: *mask* (input replaced by ``[MASK]``), *refine* (a conditioning position; MAGVIT's COMMIT
  puts a corrupted condition embedding there, lfq-kit gives the condition-frame tokens exactly) and *recons* (any
  other visible position: predict the token that is given). :func:`position_weights`.
- Normalization: per token (the weighted mean over every position of the batch) or per sequence (each example's
  weighted mean, then the mean over examples, as MAGVIT). :func:`reduce_loss`.
- :class:`HeadTransform`: MaskGIT's ``MlmLayer`` transform Dense → GELU → LayerNorm before the tied output logits
  (which keep their bias); MaskGIT also puts a LayerNorm on the summed input embeddings (``nn.LayerNorm`` in
  ``MaskedLM``).

Weight decay follows the rule every model shares (:mod:`lfq_kit.models._training`): none on biases of any shape (the
tied heads' ``(g, S)`` bias), norms, embeddings, tables, position embeddings and the mask embedding.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from ..distributed import all_reduce_sum, is_distributed, world_size

__all__ = [
    "HeadTransform",
    "LossNormalization",
    "global_weight_share",
    "position_weights",
    "reduce_loss",
]

LossNormalization = Literal["token", "sequence"]


def position_weights(
    mask: Tensor,
    condition: Tensor | None,
    mask_weight: float = 1.0,
    refine_weight: float = 0.0,
    recons_weight: float = 0.0,
) -> Tensor:
    """Per-position loss weights ``(B, N)`` float32 from the ``(B, N)`` bool ``mask`` (masked positions) and
    ``condition`` (given condition-frame positions, or None): ``mask_weight`` where masked, ``refine_weight`` at
    unmasked condition positions, ``recons_weight`` at every other position. ``(1, 0, 0)``: masked positions only."""
    weights = torch.full(mask.shape, float(recons_weight), device=mask.device)
    if condition is not None:
        weights = weights.masked_fill(condition & ~mask, float(refine_weight))
    return weights.masked_fill(mask, float(mask_weight))


def reduce_loss(per_position: Tensor, weights: Tensor, normalization: LossNormalization = "token") -> Tensor:
    """The scalar loss from per-position losses and weights, both ``(B, N)``.

    ``"token"``: ``Σ w·l / Σ w`` over the whole batch. ``"sequence"``: per example ``Σ_n w·l / Σ_n w``, then the
    mean over the examples (an example with more weight does not count more). Zero total weight counts as 1.

    Raises:
        ValueError: an unknown ``normalization``.
    """
    weighted = per_position * weights
    if normalization == "token":
        return weighted.sum() / weights.sum().clamp_min(1.0)
    if normalization == "sequence":
        return (weighted.sum(1) / weights.sum(1).clamp_min(1e-12)).mean()
    raise ValueError(f"loss_normalization must be 'token' or 'sequence', got {normalization!r}")


def global_weight_share(weights: Tensor, normalization: LossNormalization) -> Tensor:
    """``world · w_rank / w_global`` for per-token normalization (1 on one process, and per sequence).

    The weight total differs per rank, so DDP's average of the ranks' means is not the mean over the global batch;
    scaling each rank's loss by this factor makes it so (one all-reduce of a sum, no host sync). Per-sequence means
    need no scaling: every rank holds the same number of sequences.
    """
    if normalization == "sequence" or not is_distributed():
        return torch.ones((), device=weights.device)
    local = weights.sum().float()
    return world_size() * local / all_reduce_sum(local.clone()).clamp_min(1.0)


class HeadTransform(nn.Module):
    """MaskGIT's ``MlmLayer`` transform (google-research/maskgit ``maskgit/nets/maskgit_transformer.py``):
    ``(..., D) → Dense(D) → GELU → LayerNorm → (..., D)``, applied before the logits tied to the token
    tables."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dense = nn.Linear(dim, dim)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.act(self.dense(x)))
