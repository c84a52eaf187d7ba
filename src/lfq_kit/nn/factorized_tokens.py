"""Factorized token embedding and tied prediction heads (MAGVIT-v2, arXiv 2310.05737, Sec. 3.1).

A vocabulary of ``V = S^g`` ids is split into ``g`` sub-tokens of ``S`` values each, digit ``k`` of the base-``S``
expansion ``id = Σ_k sub_k · S^k``. For an 18-bit LFQ id and ``g = 2`` that is sub-token A = bits 0–8 and B = bits
9–17 of the LSB-first index (``id = A + 512·B``): two 512-row tables whose embeddings are summed, and two 512-way
heads tied to those tables, instead of one 2^18-row table and one 2^18-way softmax (0.26 M instead of 134 M
parameters per table at width 512). The joint distribution of the heads is the product of the per-group ones, so
``log p(id) = Σ_k log p_k(sub_k)`` and the training loss is the sum of the ``g`` cross-entropies.

``g = 1`` is no factorization (any vocabulary: VQ and FSQ tokenizers, small LFQ vocabularies). The masked LM and
the token-target video pretraining share this module; the masked LM also embeds a ``[MASK]`` id (``V``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["FactorizedTokens", "merge_tokens", "split_tokens"]


def _sub_vocab(vocab_size: int, num_groups: int) -> int:
    """``S`` with ``S ** num_groups == vocab_size``, or a ``ValueError`` naming both values."""
    if vocab_size < 1 or num_groups < 1:
        raise ValueError(f"vocab_size and num_groups must be >= 1, got {vocab_size}, {num_groups}")
    size = round(vocab_size ** (1.0 / num_groups))
    for candidate in (size - 1, size, size + 1):  # float rounding of the root
        if candidate >= 1 and candidate**num_groups == vocab_size:
            return candidate
    raise ValueError(
        f"a vocabulary of {vocab_size} ids does not split into {num_groups} equal sub-vocabularies (it must be "
        f"S^{num_groups} for an integer S, e.g. 2^18 = 512^2); use num_groups 1 (no factorization) for this tokenizer"
    )


def split_tokens(ids: Tensor, sub_vocab: int, num_groups: int) -> Tensor:
    """``(...)`` int64 ids in ``[0, S^g)`` → ``(..., g)`` sub-tokens in ``[0, S)``, least significant first."""
    powers = sub_vocab ** torch.arange(num_groups, device=ids.device, dtype=torch.long)
    return torch.div(ids.long().unsqueeze(-1), powers, rounding_mode="floor") % sub_vocab


def merge_tokens(subs: Tensor, sub_vocab: int) -> Tensor:
    """Inverse of :func:`split_tokens`: ``(..., g)`` sub-tokens → ``(...)`` int64 ids."""
    powers = sub_vocab ** torch.arange(subs.shape[-1], device=subs.device, dtype=torch.long)
    return (subs.long() * powers).sum(-1)


class FactorizedTokens(nn.Module):
    """Embedding of token ids (plus ``[MASK]``) and the tied per-group heads.

    Args:
        vocab_size: ``V``, number of token ids (the tokenizer's codebook size).
        dim: embedding width ``D``.
        num_groups: ``g``; ``V`` must equal ``S^g`` for an integer ``S`` (``2`` for 2^18 LFQ ids: ``S = 512``).
        mask_token: add a ``[MASK]`` embedding, input id ``V`` (never predicted).

    Shapes: :meth:`embed` ``(...)`` int ids in ``[0, V]`` (``V`` only with ``mask_token``) → ``(..., D)``;
    :meth:`logits` ``(..., D)`` → ``(..., g, S)``; :meth:`loss` and :meth:`log_prob` as documented there.

    Raises:
        ValueError: ``V`` is not a perfect ``g``-th power; ids outside the range (in :meth:`embed` and :meth:`loss`).
    """

    def __init__(self, vocab_size: int, dim: int, num_groups: int = 1, mask_token: bool = True) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.num_groups = num_groups
        self.sub_vocab = _sub_vocab(vocab_size, num_groups)
        self.dim = dim
        self.mask_id = vocab_size if mask_token else None
        # One table for every group's sub-tokens, group k in rows [k·S, (k+1)·S); tied to the heads.
        self.tables = nn.Parameter(torch.randn(num_groups * self.sub_vocab, dim) * 0.02)
        self.mask_embedding = nn.Parameter(torch.randn(dim) * 0.02) if mask_token else None
        self.bias = nn.Parameter(torch.zeros(num_groups, self.sub_vocab))
        self.register_buffer("_offsets", torch.arange(num_groups, dtype=torch.long) * self.sub_vocab, persistent=False)

    def split(self, ids: Tensor) -> Tensor:
        """``(...)`` ids → ``(..., g)`` sub-tokens."""
        return split_tokens(ids, self.sub_vocab, self.num_groups)

    def merge(self, subs: Tensor) -> Tensor:
        """``(..., g)`` sub-tokens → ``(...)`` ids."""
        return merge_tokens(subs, self.sub_vocab)

    def _check_ids(self, ids: Tensor, allow_mask: bool) -> None:
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            raise ValueError(f"token ids must be an integer tensor, got {ids.dtype}")
        if ids.numel():
            top = self.vocab_size + (1 if allow_mask and self.mask_id is not None else 0)
            lo, hi = torch.aminmax(ids)
            if lo < 0 or hi >= top:
                raise ValueError(f"token ids must lie in [0, {top}), got values in [{lo.item()}, {hi.item()}]")

    def embed(self, ids: Tensor) -> Tensor:
        """Sum of the sub-token embeddings; ``[MASK]`` positions get the mask embedding."""
        self._check_ids(ids, allow_mask=True)
        if self.mask_id is None:
            return F.embedding(self.split(ids) + self._offsets, self.tables).sum(-2)
        masked = ids == self.mask_id
        subs = self.split(ids.masked_fill(masked, 0)) + self._offsets
        emb = F.embedding(subs, self.tables).sum(-2)
        return torch.where(masked.unsqueeze(-1), self.mask_embedding.to(emb.dtype), emb)

    def logits(self, hidden: Tensor) -> Tensor:
        """``(..., D)`` → ``(..., g, S)`` logits, each group's head tied to its embedding table."""
        flat = hidden @ self.tables.to(hidden.dtype).T  # (..., g·S)
        return flat.unflatten(-1, (self.num_groups, self.sub_vocab)) + self.bias.to(flat.dtype)

    def log_prob(self, logits: Tensor, ids: Tensor) -> Tensor:
        """``log p(id) = Σ_k log softmax(logits_k)[sub_k]`` in nats, float32, shape of ``ids``."""
        logp = logits.float().log_softmax(-1)
        return logp.gather(-1, self.split(ids).unsqueeze(-1)).squeeze(-1).sum(-1)

    def cross_entropy(self, logits: Tensor, targets: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Per-position cross-entropy (nats, float32, shape of ``targets``), summed over the groups: ``(..., g, S)``
        logits, ``(...)`` ids in ``[0, V)``; ``label_smoothing`` per group as in :func:`F.cross_entropy`."""
        self._check_ids(targets, allow_mask=False)
        flat = logits.float().reshape(-1, self.sub_vocab)  # (N·g, S)
        ce = F.cross_entropy(flat, self.split(targets).reshape(-1), reduction="none", label_smoothing=label_smoothing)
        return ce.view(*targets.shape, self.num_groups).sum(-1)

    def loss(
        self, logits: Tensor, targets: Tensor, weight: Tensor | None = None, label_smoothing: float = 0.0
    ) -> Tensor:
        """Sum over groups of the mean cross-entropy (nats) over positions where ``weight`` is true.

        Args:
            logits: ``(..., g, S)``.
            targets: ``(...)`` ids in ``[0, V)``.
            weight: ``(...)`` bool (positions that count) or None for all; at least one position must count.
            label_smoothing: per group, as in :func:`torch.nn.functional.cross_entropy`.
        """
        ce = self.cross_entropy(logits, targets, label_smoothing)
        if weight is None:
            return ce.mean()
        weight = weight.to(ce.dtype)
        return (ce * weight).sum() / weight.sum().clamp_min(1.0)

    def sample(
        self,
        logits: Tensor,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Draw one id per position: ``(..., g, S)`` logits → ``(ids (...) int64, log p(ids) (...) float32)``.

        Each sub-token is sampled from ``softmax(logits / temperature)`` restricted to its ``top_k`` largest
        logits (Gumbel-max with ``generator``); ``temperature == 0`` or ``top_k == 1`` takes the argmax. The
        returned log-probability is under the same tempered, truncated distribution (the raw one at
        ``temperature == 0``), summed over groups.
        """
        logits = logits.float()
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be None or >= 1, got {top_k}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if temperature == 0 or top_k == 1:
            subs = logits.argmax(-1)
            logp = logits.log_softmax(-1)
        else:
            scaled = logits / temperature
            if top_k is not None and top_k < self.sub_vocab:
                kth = scaled.topk(top_k, dim=-1).values[..., -1:]
                scaled = scaled.masked_fill(scaled < kth, float("-inf"))
            logp = scaled.log_softmax(-1)
            uniform = torch.rand(logp.shape, generator=generator, device=logp.device).clamp_(1e-20, 1.0)
            subs = (logp - (-uniform.log()).log()).argmax(-1)
        return self.merge(subs), logp.gather(-1, subs.unsqueeze(-1)).squeeze(-1).sum(-1)
