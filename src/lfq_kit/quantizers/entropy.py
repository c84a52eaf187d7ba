"""Entropy terms of binary (sign) quantizers, computed from per-bit logits without an N × K matrix.

For LFQ and BSQ every code is a corner of a hypercube and the soft assignment
``p(c | z) = softmax_c(-‖z − c‖² / τ)`` factorizes into independent Bernoullis, one per bit, with
``P(bit_i = 1) = sigmoid(x_i)`` for a per-bit logit ``x_i`` (``4 z_i / τ`` for LFQ). Hence:

* the per-sample entropy ``H(p(·|z))`` is a sum of ``d`` binary entropies;
* the batch (codebook) entropy ``H(mean_z p(·|z))`` does not factorize, but the mean of product
  distributions over two halves of the bits (``a = ceil(d/2)`` low bits, ``b`` high bits) is the matrix
  product ``Aᵀ B / N`` of the half distributions ``A: (N, 2^a)`` and ``B: (N, 2^b)``. That is exact, in
  ``O(N · 2^ceil(d/2) + 2^d)`` memory, where the naive softmax needs ``N · 2^d``.

Each half distribution is itself the outer product of the distributions of its two quarters, so the
only ``(N, 2^a)``-sized work besides the three inherent products (``Aᵀ B`` forward, ``B Gᵀ`` and ``A G``
backward) is one multiply per half to build it and one to weight its gradient. :class:`_HalfProductSum`
does this with an analytic backward, over chunks of tokens on CPU (reused buffers, no page faults from
fresh 32 MiB allocations), without saving ``A`` or ``B``.

All entropies are in nats. The computation runs in float32 with autocast disabled. Under
``torch.distributed`` the mean distribution is all-reduced across ranks with gradient, so the batch
entropy is that of the global batch (MAGVIT-v2, arXiv 2310.05737, Sec. 3.1 and Eq. 4; docs/quantizers.md).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..distributed import all_reduce_sum, differentiable_all_reduce_sum, is_distributed

__all__ = ["binary_entropy", "code_entropy", "exact_code_entropy", "grouped_code_entropy", "bit_patterns"]

_TINY = 1e-30  # clamp before log: keeps the gradient of p·log p finite where p underflows to 0
# Quarter log-probabilities are floored here before exp(), so that every entry of a half distribution
# (a product of two quarters) is at least e^-87, a normal float32: subnormal operands and results run
# on a slow path (about 10× slower). A floored probability is below 1.3e-19 and changes no entropy
# measurably (the batch entropy moves by less than 1e-11 nats at d = 18).
_QUARTER_LOG_FLOOR = -43.5
# On CPU the tokens are processed in chunks of this many (rows × 2^a) floats per buffer (8 MiB): the
# buffers are reused across chunks instead of freshly allocated (glibc mmaps every tensor of 32 MiB and
# more, so an (N, 512) tensor is page-faulted anew every step) and stay closer in cache. Smaller chunks
# were no faster on one thread and slower with two on a busy machine (more parallel regions to wait in).
# Accelerators take all tokens at once: their caching allocator reuses memory, and launches would
# dominate small chunks.
_CPU_CHUNK_ELEMENTS = 2**21


def binary_entropy(logits: Tensor) -> Tensor:
    """Entropy in nats of Bernoulli(sigmoid(logits)), elementwise, stable for any logit magnitude."""
    p = torch.sigmoid(logits)
    return p * F.softplus(-logits) + (1 - p) * F.softplus(logits)


def bit_patterns(num_bits: int, device: torch.device | None = None) -> Tensor:
    """``(2^num_bits, num_bits)`` float32 matrix whose row ``j`` holds the bits of ``j``, LSB first."""
    j = torch.arange(2**num_bits, device=device)
    return ((j[:, None] >> torch.arange(num_bits, device=device)) & 1).float()


class _Layout(NamedTuple):
    """Where the four quarter distributions of ``d`` bits sit in one ``(N, W)`` tensor.

    Quarters, in order: low and high quarter of the low half (``a`` bits), then of the high half. A half
    with ``k`` bits splits into ``ceil(k/2)`` low and ``floor(k/2)`` high bits; a half entry
    ``j = l + 2^ceil(k/2) · h`` is ``low[l] · high[h]`` (LSB first throughout).
    """

    patterns: Tensor  # (d, W): column c of quarter q holds the bits of c − start(q) on q's bits, 0 elsewhere
    member: Tensor  # (d, W): 1 where bit i belongs to the quarter of column c
    gradient_map: Tensor  # (W, 2d): [patternsᵀ | memberᵀ], maps column marginals to per-bit sums
    spans: tuple[tuple[int, int], ...]  # (first column, 2^bits) of each quarter


@functools.cache
def _layout(d: int, device: torch.device) -> _Layout:
    """The quarter layout for ``d`` bits on ``device``, built once (no per-step host-to-device copy)."""
    a = (d + 1) // 2
    quarters = []
    for start, k in ((0, a), (a, d - a)):
        low = (k + 1) // 2
        quarters += [(start, low), (start + low, k - low)]
    width = sum(2**k for _, k in quarters)
    with torch.inference_mode(False), torch.no_grad():  # plain tensors, usable under autograd later
        patterns = torch.zeros(d, width)
        member = torch.zeros(d, width)
        spans, column = [], 0
        for start, k in quarters:
            patterns[start : start + k, column : column + 2**k] = bit_patterns(k).T
            member[start : start + k, column : column + 2**k] = 1.0
            spans.append((column, 2**k))
            column += 2**k
        gradient_map = torch.cat([patterns, member]).T.contiguous()
        return _Layout(patterns.to(device), member.to(device), gradient_map.to(device), tuple(spans))


def _quarter_probs(x: Tensor, layout: _Layout) -> Tensor:
    """``(N, d)`` logits → ``(N, W)`` probabilities of every bit pattern of every quarter, floored.

    ``log P(j) = Σ_i log σ(−x_i) + Σ_{i ∈ bits(j)} x_i`` over the quarter's bits, since
    ``log σ(x) − log σ(−x) = x``: one small product for all four quarters.
    """
    log_probs = torch.addmm(F.logsigmoid(-x) @ layout.member, x, layout.patterns)
    return log_probs.clamp_(min=_QUARTER_LOG_FLOOR).exp_()


def _halves(probs: Tensor, layout: _Layout, buffers: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
    """The half distributions ``A: (n, 2^a)``, ``B: (n, 2^b)`` of ``n`` tokens, written into ``buffers``."""
    n = probs.shape[0]
    out = []
    for (lo, lo_w), (hi, hi_w), buffer in zip(layout.spans[0::2], layout.spans[1::2], buffers):
        half = torch.mul(probs[:, hi : hi + hi_w, None], probs[:, None, lo : lo + lo_w], out=buffer[:n])
        out.append(half.view(n, lo_w * hi_w))
    return out[0], out[1]


def _half_buffers(x: Tensor, layout: _Layout, rows: int) -> tuple[Tensor, Tensor]:
    (_, a_lo), (_, a_hi), (_, b_lo), (_, b_hi) = layout.spans
    return x.new_empty(rows, a_hi, a_lo), x.new_empty(rows, b_hi, b_lo)


def _chunk_rows(x: Tensor, half_width: int) -> int:
    n = max(x.shape[0], 1)
    return n if x.device.type != "cpu" else max(1, min(n, _CPU_CHUNK_ELEMENTS // half_width))


class _HalfProductSum(torch.autograd.Function):
    """``(N, d)`` float32 logits → ``S = Σ_n A_n ⊗ B_n = Aᵀ B``, ``(2^a, 2^b)``, with an analytic backward.

    Backward, for ``G = ∂L/∂S``: ``∂L/∂A = B Gᵀ`` and ``∂L/∂B = A G``. With ``W = A ∘ ∂L/∂A`` and
    ``∂ log A_j / ∂x_i = bit_i(j) − σ(x_i)``, the logit gradient of a low-half bit ``i`` is
    ``Σ_j W_j bit_i(j) − σ(x_i) Σ_j W_j``; both sums only need the marginals of ``W`` over the quarter
    holding bit ``i`` (row and column sums of ``W`` viewed as ``(2^hi, 2^lo)``). Floored quarter
    entries are differentiated as if unfloored; their weight in ``W`` is below 1.3e-19.
    Only the logits and the ``(N, W)`` quarter probabilities are saved (``W = O(2^(d/4))``).
    """

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        layout = _layout(x.shape[1], x.device)
        probs = _quarter_probs(x, layout)
        (_, a_lo), (_, a_hi), (_, b_lo), (_, b_hi) = layout.spans
        rows = _chunk_rows(x, a_lo * a_hi)
        buffers = _half_buffers(x, layout, rows)
        total = x.new_zeros(a_lo * a_hi, b_lo * b_hi)
        for start in range(0, x.shape[0], rows):
            low, high = _halves(probs[start : start + rows], layout, buffers)
            total.addmm_(low.T, high)
        ctx.save_for_backward(x, probs)
        ctx.rows = rows
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:
        x, probs = ctx.saved_tensors
        layout = _layout(x.shape[1], x.device)
        (_, alo_w), (_, ahi_w), (_, blo_w), (_, bhi_w) = layout.spans
        rows = ctx.rows
        with torch.autocast(x.device.type, enabled=False):  # backward may run inside the caller's autocast
            grad = grad.float().contiguous()
            buffers = _half_buffers(x, layout, rows)
            grad_buffers = _half_buffers(x, layout, rows)
            # Marginals of W over each quarter, one (N, 2^bits) tensor per quarter (written in place).
            marginals = [probs.new_empty(x.shape[0], width) for _, width in layout.spans]
            for start in range(0, x.shape[0], rows):
                chunk = slice(start, start + rows)
                low, high = _halves(probs[chunk], layout, buffers)
                n = low.shape[0]
                w_low = torch.mm(high, grad.T, out=grad_buffers[0][:n].view(n, -1)).mul_(low)
                w_high = torch.mm(low, grad, out=grad_buffers[1][:n].view(n, -1)).mul_(high)
                w_low, w_high = w_low.view(n, ahi_w, alo_w), w_high.view(n, bhi_w, blo_w)
                torch.sum(w_low, 1, out=marginals[0][chunk])
                torch.sum(w_low, 2, out=marginals[1][chunk])
                torch.sum(w_high, 1, out=marginals[2][chunk])
                torch.sum(w_high, 2, out=marginals[3][chunk])
            per_bit, quarter_total = (torch.cat(marginals, 1) @ layout.gradient_map).chunk(2, dim=1)
            return per_bit - torch.sigmoid(x) * quarter_total


def _distributed() -> bool:
    # Only with autograd on (training): evaluation shards are uneven (every video once, no padding), so a
    # collective in a no-grad forward could wait forever on a rank that has run out of batches.
    return torch.is_grad_enabled() and is_distributed()


def _global_mean(local_sum: Tensor, count: int) -> Tensor:
    """Mean over the tokens of every rank: all-reduce the sum (differentiably) and the token count.

    No host-device sync: the count is reduced as a device tensor and divided on the device.
    """
    if _distributed():
        # The backward sums the ranks' gradients; with DDP's gradient averaging that yields exactly the gradient
        # of the global-batch entropy.
        total = differentiable_all_reduce_sum(local_sum)
        n = all_reduce_sum(torch.full((), count, dtype=torch.long, device=local_sum.device))
        return total / n
    if count == 0:
        raise ValueError("the batch entropy needs at least one token, got an empty batch")
    return local_sum / count


def _entropy(probs: Tensor) -> Tensor:
    return -(probs * probs.clamp_min(_TINY).log()).sum()


def _mean_code_distribution(x: Tensor) -> Tensor:
    """``(N, d)`` float32 logits → ``(2^a, 2^b)`` mean code distribution of the (global) batch."""
    return _global_mean(_HalfProductSum.apply(x), x.shape[0])


def exact_code_entropy(logits: Tensor) -> Tensor:
    """Exact entropy (nats, 0-dim float32) of the mean code distribution of ``N`` tokens.

    Args:
        logits: ``(N, d)`` per-bit logits, any float dtype; ``d`` up to 28 (memory
            ``O(N · 2^ceil(d/2) + 2^d)``: at ``N = 16384, d = 18`` the largest tensors are 8 MiB buffers
            on CPU, 32 MiB on accelerators, plus the 1 MiB mean distribution).

    Raises:
        ValueError: ``N == 0`` outside ``torch.distributed`` (the mean of no tokens is undefined).
    """
    with torch.autocast(logits.device.type, enabled=False):
        return _entropy(_mean_code_distribution(logits.float()))


def grouped_code_entropy(logits: Tensor, group_size: int = 9) -> Tensor:
    """Sum of the exact mean-distribution entropies of consecutive groups of ``group_size`` bits (nats).

    An upper bound on :func:`exact_code_entropy` (subadditivity), equal to it when the groups are
    independent; the approximation of BSQ-ViT (Zhao et al., arXiv 2406.07548, Sec. 3.3).
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    with torch.autocast(logits.device.type, enabled=False):
        x = logits.float()
        total = x.new_zeros(())
        for group in x.split(group_size, dim=-1):  # a loop over d / group_size groups, not tokens
            total = total + _entropy(_mean_code_distribution(group.contiguous()))
        return total


def code_entropy(logits: Tensor, group_size: int | None = None) -> Tensor:
    """Batch (codebook) entropy: exact when ``group_size`` is None, else :func:`grouped_code_entropy`."""
    return exact_code_entropy(logits) if group_size is None else grouped_code_entropy(logits, group_size)
