"""Exact sparse code histograms and the usage / perplexity / entropy figures computed from one.

A histogram is held as ``(keys, counts)``: the distinct flat keys ``codebook · K + index`` that occurred
(int64, sorted ascending) and how often each did (int64, > 0). Memory is proportional to the number of
distinct codes seen, whatever the codebook size ``K``; :class:`~lfq_kit.metrics.CodebookUsage` uses it
for vocabularies too large for a dense ``(num_codebooks, K)`` table and, for the figures, for both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["SparseHistogram", "histogram_of", "merge_histograms", "usage_statistics"]


class SparseHistogram(NamedTuple):
    """``keys``: ``(D,)`` int64, distinct and sorted ascending; ``counts``: ``(D,)`` int64, each ``> 0``."""

    keys: Tensor
    counts: Tensor


def histogram_of(keys: Tensor) -> SparseHistogram:
    """Histogram of ``keys`` (any shape, int64): one sort, ``O(N log N)`` for ``N = keys.numel()``."""
    unique, counts = torch.unique(keys.reshape(-1), sorted=True, return_counts=True)
    return SparseHistogram(unique, counts)


def merge_histograms(keys: Sequence[Tensor], counts: Sequence[Tensor]) -> SparseHistogram:
    """Sum of the histograms ``(keys[i], counts[i])``; a key may repeat within and across them.

    Args:
        keys: 1-D int64 tensors, on any devices (merged on the device of the first).
        counts: 1-D int64 tensors, ``counts[i]`` as long as ``keys[i]``.

    Returns:
        The merged :class:`SparseHistogram` (empty, on the CPU, when ``keys`` is empty).
    """
    if not keys:
        empty = torch.zeros(0, dtype=torch.long)
        return SparseHistogram(empty, empty.clone())
    device = keys[0].device
    flat = torch.cat([k.to(device) for k in keys])
    weight = torch.cat([c.to(device) for c in counts])
    unique, inverse = torch.unique(flat, sorted=True, return_inverse=True)
    total = torch.zeros(unique.numel(), dtype=torch.long, device=device).index_add_(0, inverse, weight)
    return SparseHistogram(unique, total)


def usage_statistics(hist: SparseHistogram, codebook_size: int, num_codebooks: int) -> dict[str, Tensor]:
    """Usage, perplexity and entropy in bits of each codebook's histogram (see ``CodebookUsage``).

    Args:
        hist: sparse histogram over flat keys ``codebook · codebook_size + index``, keys sorted.
        codebook_size: ``K``.
        num_codebooks: number of codebooks ``n``.

    Returns:
        ``{"usage", "perplexity", "entropy_bits"}``, float32 of shape ``(n,)``, computed in float64:
        usage ``distinct / K``; entropy ``H = −Σ p ln p`` over the codes seen (``p = count / total``);
        perplexity ``exp(H)``, or 0 for a codebook with no count. Each codebook's entropy is summed
        over its own contiguous run of keys in key order, so the result depends only on the histogram.
    """
    keys, counts = hist
    device = keys.device
    if num_codebooks == 1:
        codebook = torch.zeros_like(keys)
    else:
        codebook = torch.div(keys, codebook_size, rounding_mode="floor")
    distinct = torch.bincount(codebook, minlength=num_codebooks)
    total = torch.zeros(num_codebooks, dtype=torch.long, device=device).index_add_(0, codebook, counts)
    p = counts.double() / total.double()[codebook]
    terms = -torch.special.xlogy(p, p)
    if num_codebooks == 1:
        entropy = terms.sum().view(1)
    else:  # keys are sorted, so each codebook is one contiguous run; a deterministic sum per run
        entropy = torch.stack([run.sum() for run in terms.split(distinct.tolist())])
    entropy = torch.where(entropy > 0, entropy, torch.zeros_like(entropy))  # drops −0 and rounding
    usage = distinct.double() / float(codebook_size)
    perplexity = torch.where(total == 0, torch.zeros_like(entropy), entropy.exp())
    out = {"usage": usage, "perplexity": perplexity, "entropy_bits": entropy / math.log(2)}
    return {name: value.float() for name, value in out.items()}
