"""Codebook utilization of a quantizer: fraction of codes used and perplexity of the code histogram.

The metric keeps a histogram of the indices a quantizer emitted (``QuantizerOutput.indices``,
``(B, *S)`` int64 in ``[0, codebook_size)``) and reports, from that histogram:

* ``usage``: the fraction of the ``K = codebook_size`` codes that occurred at least once;
* ``perplexity``: ``exp(H)`` with ``H = −Σ_k p_k ln p_k`` the entropy in nats of the empirical code
  distribution ``p_k = count_k / Σ_j count_j``. It is the *effective number of codes*: ``K`` when every
  code is used equally often, ``1`` when a single code is used, and in general ``≤ K · usage``.
* ``entropy_bits``: the same ``H`` in bits (``H / ln 2``), directly comparable with the
  ``log2 K`` bits per token of the quantizer (:attr:`Quantizer.bits_per_token`).

Codebook utilization and perplexity are the standard collapse diagnostics of VQ tokenizers; MAGVIT-v2
(Yu et al., arXiv 2310.05737, Sec. 3.1) motivates LFQ by its near-full use of a ``2^18`` vocabulary.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric

__all__ = ["CodebookUsage"]

_MAX_SHOWN = 8  # out-of-range values listed in the error message


class CodebookUsage(Metric):
    """Fraction of codes used and perplexity of the code histogram, accumulated over batches and ranks.

    State: ``counts``, a ``(num_codebooks, codebook_size)`` int64 histogram, reduced with ``"sum"``
    across ranks (DDP / FSDP), so :meth:`compute` sees the histogram of the global data. Memory is
    ``8 · num_codebooks · codebook_size`` bytes (2 MiB for ``K = 2^18``); the histogram, the entropy and
    the usage are computed in float64 and returned as float32.

    :meth:`update` takes ``indices``, an integer tensor (any integer dtype except bool):

    * ``num_codebooks == 1``: any shape (``(B, *S)`` as returned by a quantizer), every element is one token;
    * ``num_codebooks > 1``: shape ``(..., num_codebooks)``, the last axis holds one index per codebook
      (e.g. the per-group indices of a grouped / residual quantizer, moved to the last axis).

    The update is one ``torch.bincount`` over ``indices + codebook · codebook_size``; the range check
    reads one boolean back to the host per update (a device sync on GPU).

    :meth:`compute` returns a dict of float32 tensors, each of shape ``()`` when ``num_codebooks == 1``
    and ``(num_codebooks,)`` otherwise:

    * ``"usage"``: fraction of codes with a nonzero count, in ``[0, 1]`` (dimensionless);
    * ``"perplexity"``: ``exp(H)``, the effective number of codes, in ``[1, codebook_size]``;
    * ``"entropy_bits"``: ``H`` in bits, in ``[0, log2 codebook_size]``.

    An empty histogram (no update yet, or only empty updates, or after :meth:`reset`) gives
    ``usage = 0``, ``perplexity = 0`` and ``entropy_bits = 0``. Perplexity 0 (rather than NaN, or the
    ``exp(0) = 1`` of the ``0 · ln 0 = 0`` convention) says "no code in use", consistent with usage 0,
    keeps logged averages finite, and cannot be confused with the collapsed case (perplexity 1).
    Perplexity is thus ``2 ** entropy_bits`` except on an empty histogram.

    To log with Lightning, log the computed values (``self.log_dict(metric.compute())`` at epoch end, then
    ``metric.reset()``); ``self.log(name, metric)`` expects a scalar and does not accept the dict.

    Args:
        codebook_size: ``K``, number of codes per codebook (``quantizer.codebook_size``).
        num_codebooks: number of codebooks whose histograms are kept separately.
        **kwargs: passed to :class:`torchmetrics.Metric` (``sync_on_compute``, ``process_group``, ...).

    Raises:
        ValueError: ``codebook_size`` or ``num_codebooks`` not a positive int; in :meth:`update`, indices
            that are not an integer tensor, whose last axis is not ``num_codebooks`` long (when
            ``num_codebooks > 1``), or with a value outside ``[0, codebook_size)`` (the message lists them).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    counts: Tensor

    def __init__(self, codebook_size: int, num_codebooks: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        for name, value in (("codebook_size", codebook_size), ("num_codebooks", num_codebooks)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"CodebookUsage {name} must be a positive int, got {value!r}")
        self.codebook_size = codebook_size
        self.num_codebooks = num_codebooks
        self.add_state(
            "counts",
            default=torch.zeros(num_codebooks, codebook_size, dtype=torch.long),
            dist_reduce_fx="sum",
        )

    def update(self, indices: Tensor) -> None:
        """Add ``indices`` (see the class docstring for the shape) to the histogram."""
        if (
            not isinstance(indices, Tensor)
            or indices.is_floating_point()
            or indices.is_complex()
            or indices.dtype == torch.bool
        ):
            got = indices.dtype if isinstance(indices, Tensor) else type(indices).__name__
            raise ValueError(f"CodebookUsage expects an integer index tensor, got {got}")
        n, k = self.num_codebooks, self.codebook_size
        if n > 1 and (indices.ndim == 0 or indices.shape[-1] != n):
            raise ValueError(
                f"CodebookUsage(num_codebooks={n}) expects indices of shape (..., {n}); "
                f"got shape {tuple(indices.shape)}"
            )
        indices = indices.long().to(self.counts.device)
        bad = (indices < 0) | (indices >= k)
        if bool(bad.any()):
            values = torch.unique(indices[bad])
            shown = ", ".join(str(v) for v in values[:_MAX_SHOWN].tolist())
            more = f" (and {values.numel() - _MAX_SHOWN} more)" if values.numel() > _MAX_SHOWN else ""
            raise ValueError(
                f"CodebookUsage indices must lie in [0, {k}); got {int(bad.sum())} out-of-range "
                f"element(s) with values {shown}{more}"
            )
        if n > 1:
            indices = indices + torch.arange(n, device=indices.device) * k  # broadcast over the last axis
        hist = torch.bincount(indices.reshape(-1), minlength=n * k)
        self.counts += hist.view(n, k)

    def compute(self) -> dict[str, Tensor]:
        """``{"usage", "perplexity", "entropy_bits"}``, float32, shape ``()`` or ``(num_codebooks,)``."""
        counts = self.counts.double()
        total = counts.sum(-1, keepdim=True)
        empty = total.squeeze(-1) == 0
        usage = (counts > 0).double().mean(-1)
        p = counts / total.clamp(min=1)
        entropy = (-torch.special.xlogy(p, p).sum(-1)).clamp(min=0)  # nats; clamp drops −0 and rounding
        perplexity = torch.where(empty, torch.zeros_like(entropy), entropy.exp())
        out = {"usage": usage, "perplexity": perplexity, "entropy_bits": entropy / math.log(2)}
        if self.num_codebooks == 1:
            out = {name: value.squeeze(0) for name, value in out.items()}
        return {name: value.float() for name, value in out.items()}
