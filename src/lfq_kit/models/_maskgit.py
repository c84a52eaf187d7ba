"""MaskGIT's masking schedule and iterative parallel decoding (Chang et al., arXiv 2202.04200, Sec. 3.2; the
MAGVIT-v2 masked LM, arXiv 2310.05737, Sec. 4; google-research/maskgit ``parallel_decode``).

Training masks ``ceil(cos(π r / 2) · N)`` random positions per example, ``r ~ U(0, 1)``, at least one. Decoding
starts with every unknown position masked; step ``s`` samples every masked position, then (for ``s < S − 1``)
leaves masked the ``floor(N₀ · cos(π/2 · (s+1)/S))`` lowest-scoring samples (at least 1, fewer than are masked
now), scoring each sample by its log-probability plus ``choice_temperature · (1 − (s+1)/S)`` times Gumbel noise;
known positions score ``+inf``. The last step keeps every sample. Everything is batched: one count per step for
the whole batch, no Python loop over positions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["MaskedTokens", "cosine_mask", "decoding_mask_counts", "maskgit_decode"]


class MaskedTokens(NamedTuple):
    """A training input: ``inputs`` (B, N) int64 with the mask id exactly where ``mask`` (B, N) bool is true."""

    inputs: Tensor
    mask: Tensor


def cosine_mask(
    ids: Tensor,
    mask_id: int,
    generator: torch.Generator | None = None,
    ratio: float | None = None,
    maskable: Tensor | None = None,
) -> MaskedTokens:
    """Mask ``(B, N)`` token ids for training (cosine schedule) or evaluation (a fixed ``ratio``).

    Per example ``n = ceil(cos(π r / 2) · M)`` with ``r ~ U(0, 1)`` (or ``n = ceil(ratio · M)``), clamped to
    ``[1, M]``, positions chosen uniformly at random without replacement among the ``M`` maskable ones
    (``maskable`` ``(B, N)`` bool, default all: condition frames of frame prediction are not maskable).
    """
    b, n = ids.shape
    device = ids.device
    maskable = torch.ones_like(ids, dtype=torch.bool) if maskable is None else maskable
    eligible = maskable.sum(1)
    if ratio is None:
        r = torch.rand(b, generator=generator, device=device)
        counts = torch.ceil(torch.cos(math.pi * r / 2) * eligible)
    else:
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"mask ratio must be in (0, 1], got {ratio}")
        counts = torch.ceil(ratio * eligible.float())
    counts = torch.minimum(counts.long().clamp(min=1), eligible)
    # Random ranks with every non-maskable position after every maskable one.
    scores = torch.rand(b, n, generator=generator, device=device) + (~maskable).float()
    order = scores.argsort(dim=1)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(n, device=device).expand(b, n))
    mask = ranks < counts[:, None]
    return MaskedTokens(ids.masked_fill(mask, mask_id), mask)


def decoding_mask_counts(num_unknown: int, steps: int) -> list[int]:
    """Positions still masked after each step ``s = 0 … S−1`` (the last is 0); ``N = 256, S = 12`` gives
    253, 247, 236, 221, 203, 181, 155, 128, 97, 66, 33, 0.

    Raises:
        ValueError: ``steps < 1`` or ``steps > num_unknown`` (a step would have nothing to fill).
    """
    if steps < 1 or steps > num_unknown:
        raise ValueError(f"decoding steps must be in [1, {num_unknown}] (the number of unknown tokens), got {steps}")
    counts, masked = [], num_unknown
    for s in range(steps - 1):  # a loop over decoding steps, not tokens
        masked = max(1, min(math.floor(num_unknown * math.cos(math.pi / 2 * (s + 1) / steps)), masked - 1))
        counts.append(masked)
    return counts + [0]


def maskgit_decode(
    ids: Tensor,
    unknown: Tensor,
    step_fn: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]],
    mask_id: int,
    steps: int = 12,
    choice_temperature: float = 4.5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Fill the ``unknown`` positions of ``ids`` by MaskGIT's iterative decoding.

    Args:
        ids: ``(B, N)`` int64; known positions hold their tokens (they never change).
        unknown: ``(B, N)`` bool, the same number of unknown positions in every row.
        step_fn: ``(current ids (B, N) with mask_id at masked positions, positions (B, M) of the masked ones)``
            → ``(sampled ids (B, M) int64, their log-probabilities (B, M) float32)``.
        mask_id: the input id of a masked position.
        steps: decoding steps ``S`` (see :func:`decoding_mask_counts`).
        choice_temperature: scale of the Gumbel noise added to the log-probabilities when choosing which
            samples to keep, annealed linearly to 0 over the steps.
        generator: random source of the Gumbel noise (and, through ``step_fn``, of the samples).

    Returns:
        ``(B, N)`` int64 ids, no position equal to ``mask_id``.
    """
    num_unknown = int(unknown[0].sum()) if unknown.numel() else 0
    if unknown.shape[0] and not bool((unknown.sum(1) == num_unknown).all()):
        raise ValueError("every row must have the same number of unknown positions")
    if num_unknown == 0:
        return ids.clone()
    counts = decoding_mask_counts(num_unknown, steps)
    current = ids.masked_fill(unknown, mask_id)
    masked = unknown.clone()
    for s, keep_masked in enumerate(counts):  # a loop over decoding steps
        num_masked = num_unknown if s == 0 else counts[s - 1]
        positions = masked.float().topk(num_masked, dim=1, sorted=False).indices  # (B, M): the masked positions
        sampled, log_prob = step_fn(current, positions)
        filled = current.scatter(1, positions, sampled)
        if keep_masked == 0:
            return filled
        ratio = (s + 1) / steps
        uniform = torch.rand(log_prob.shape, generator=generator, device=log_prob.device).clamp_(1e-20, 1.0)
        score = log_prob + choice_temperature * (1.0 - ratio) * -(-uniform.log()).log()
        lowest = score.topk(keep_masked, dim=1, largest=False, sorted=False).indices  # among the M sampled
        remask = positions.gather(1, lowest)
        masked = torch.zeros_like(masked).scatter_(1, remask, True)
        current = filled.scatter(1, remask, mask_id)
    return current  # pragma: no cover - the last count is always 0
