"""The masked LM's training-loss recipe and parameter groups (MaskGIT, arXiv 2202.04200; MAGVIT, arXiv 2212.05199,
google-research/magvit ``videogvt/train_lib/maskgvt_train_lib.py`` and its UCF-101 config; reference Sec. 4).

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
- Weight decay: none on biases of any shape (the tied heads' ``(g, S)`` bias), norms, embeddings, tables, position
  embeddings and the mask embedding. :func:`decay_parameter_groups`.
"""

from __future__ import annotations

from typing import Iterable, Literal, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..distributed import is_distributed

__all__ = [
    "DecayGroups",
    "HeadTransform",
    "LossNormalization",
    "decay_parameter_groups",
    "global_weight_share",
    "no_weight_decay",
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
    total = local.clone()
    dist.all_reduce(total)
    return dist.get_world_size() * local / total.clamp_min(1.0)


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


def no_weight_decay(name: str, param: nn.Parameter) -> bool:
    """Biases (any shape), norm weights and other 1-D parameters, embeddings, token tables and position
    embeddings get no weight decay; every other matrix does."""
    leaf = name.rsplit(".", 1)[-1]
    return param.ndim < 2 or leaf == "bias" or "embedding" in name or "tables" in name


class DecayGroups(NamedTuple):
    """Parameter names with and without weight decay (parameters that require gradients, in module order)."""

    decay: list[str]
    no_decay: list[str]


def decay_parameter_groups(
    named: Iterable[tuple[str, nn.Parameter]],
    weight_decay: float | None = None,
) -> tuple[DecayGroups, list[dict]]:
    """``(names, optimizer groups)``: the decayed group (the optimizer's own weight decay, or ``weight_decay``)
    and the group with ``weight_decay`` 0 (:func:`no_weight_decay`)."""
    names = DecayGroups([], [])
    params: tuple[list, list] = ([], [])
    for name, p in named:
        if p.requires_grad:
            skip = no_weight_decay(name, p)
            (names.no_decay if skip else names.decay).append(name)
            params[skip].append(p)
    first = {"params": params[0]} if weight_decay is None else {"params": params[0], "weight_decay": weight_decay}
    return names, [first, {"params": params[1], "weight_decay": 0.0}]
