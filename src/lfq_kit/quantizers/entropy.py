"""Entropy terms of binary (sign) quantizers, computed from per-bit logits without an N × K matrix.

For LFQ and BSQ every code is a corner of a hypercube and the soft assignment
``p(c | z) = softmax_c(-‖z − c‖² / τ)`` factorizes into independent Bernoullis, one per bit, with
``P(bit_i = 1) = sigmoid(x_i)`` for a per-bit logit ``x_i`` (``4 z_i / τ`` for LFQ). Hence:

* the per-sample entropy ``H(p(·|z))`` is a sum of ``d`` binary entropies;
* the batch (codebook) entropy ``H(mean_z p(·|z))`` does not factorize, but the mean of product
  distributions over two halves of the bits (``a = ceil(d/2)`` low bits, ``b`` high bits) is the matrix
  product ``Aᵀ B / N`` of the half distributions ``A: (N, 2^a)`` and ``B: (N, 2^b)``. That is exact, in
  ``O(N · 2^ceil(d/2) + 2^d)`` memory, where the naive softmax needs ``N · 2^d``.

All entropies are in nats. The computation runs in float32 with autocast disabled. Under
``torch.distributed`` the mean distribution is all-reduced across ranks with gradient, so the batch
entropy is that of the global batch (MAGVIT-v2, arXiv 2310.05737, Sec. 3.1 and Eq. 4; reference Sec. 1).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

__all__ = ["binary_entropy", "code_entropy", "exact_code_entropy", "grouped_code_entropy", "bit_patterns"]

_TINY = 1e-30  # clamp before log: keeps the gradient of p·log p finite where p underflows to 0
# Log-probabilities are floored here before exp(): results in float32's subnormal range (below e^-87.3)
# take a slow path (about 10× slower); the floored probabilities (≤ 2e-38) change no entropy measurably.
_LOG_FLOOR = -87.0


def binary_entropy(logits: Tensor) -> Tensor:
    """Entropy in nats of Bernoulli(sigmoid(logits)), elementwise, stable for any logit magnitude."""
    p = torch.sigmoid(logits)
    return p * F.softplus(-logits) + (1 - p) * F.softplus(logits)


def bit_patterns(num_bits: int, device: torch.device | None = None) -> Tensor:
    """``(2^num_bits, num_bits)`` float32 matrix whose row ``j`` holds the bits of ``j``, LSB first."""
    j = torch.arange(2**num_bits, device=device)
    return ((j[:, None] >> torch.arange(num_bits, device=device)) & 1).float()


class _FlooredExp(torch.autograd.Function):
    """``exp(max(x, _LOG_FLOOR))`` computed in place on ``x`` (a temporary), gradient ``grad · exp(x)``.

    In place and without a mask: this runs on ``(N, 2^⌈d/2⌉)`` tensors, the largest of the computation.
    """

    @staticmethod
    def forward(ctx, log_probs: Tensor) -> Tensor:
        probs = log_probs.clamp_(min=_LOG_FLOOR).exp_()
        ctx.save_for_backward(probs)
        return probs

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (probs,) = ctx.saved_tensors
        return grad * probs


def _product_distribution(logits: Tensor) -> Tensor:
    """``(N, h)`` bit logits → ``(N, 2^h)`` probabilities of every bit pattern (LSB first).

    ``log P(j) = Σ_i log σ(−x_i) + Σ_{i ∈ bits(j)} x_i`` because ``log σ(x) − log σ(−x) = x``.
    """
    log_all_zero = F.logsigmoid(-logits).sum(-1, keepdim=True)
    log_probs = torch.addmm(log_all_zero, logits, bit_patterns(logits.shape[-1], logits.device).T)
    return _FlooredExp.apply(log_probs)


def _global_mean(local_sum: Tensor, count: int) -> Tensor:
    """Mean over the tokens of every rank: all-reduce the sum (differentiably) and the token count."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        from torch.distributed.nn.functional import all_reduce

        # The backward of this all_reduce sums the ranks' gradients; with DDP's gradient averaging that
        # yields exactly the gradient of the global-batch entropy.
        local_sum = all_reduce(local_sum)
        n = torch.tensor([count], device=local_sum.device, dtype=torch.long)
        dist.all_reduce(n)
        count = int(n.item())
    return local_sum / count


def _entropy(probs: Tensor) -> Tensor:
    return -(probs * probs.clamp_min(_TINY).log()).sum()


def exact_code_entropy(logits: Tensor) -> Tensor:
    """Exact entropy (nats, 0-dim float32) of the mean code distribution of ``N`` tokens.

    Args:
        logits: ``(N, d)`` per-bit logits, any float dtype; ``d`` up to 24 or more (memory
            ``O(N · 2^ceil(d/2) + 2^d)``: at ``N = 16384, d = 18`` the largest tensor is 32 MiB).
    """
    with torch.autocast(logits.device.type, enabled=False):
        x = logits.float()
        a = (x.shape[-1] + 1) // 2
        low = _product_distribution(x[:, :a])  # (N, 2^a)
        high = _product_distribution(x[:, a:])  # (N, 2^b); b = 0 gives a column of ones
        mean = _global_mean(low.T @ high, x.shape[0])  # (2^a, 2^b): entry [l, h] is code l + 2^a h
        return _entropy(mean)


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
            total = total + _entropy(_global_mean(_product_distribution(group).sum(0), x.shape[0]))
        return total


def code_entropy(logits: Tensor, group_size: int | None = None) -> Tensor:
    """Batch (codebook) entropy: exact when ``group_size`` is None, else :func:`grouped_code_entropy`."""
    return exact_code_entropy(logits) if group_size is None else grouped_code_entropy(logits, group_size)
