"""Vector quantization (VQ) with a learned codebook: VQ-VAE (van den Oord et al., arXiv 1711.00937).

Options from later work: EMA codebook updates (VQ-VAE, appendix A.1; Razavi et al., arXiv 1906.00446),
l2-normalized (cosine) codes and low-dimensional codebooks through linear projections (ViT-VQGAN,
Yu et al., arXiv 2110.04627, Sec. 3.2), and restarting dead codes from batch vectors (Dhariwal et al.,
Jukebox, arXiv 2005.00341, Sec. 2.2). MAGVIT v1 and the "MAGVIT" row of MAGVIT-v2's ablation use a VQ
tokenizer; lfq-kit keeps it as the baseline that LFQ replaces.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from ..distributed import all_reduce_sum, is_distributed
from ..registry import QUANTIZERS
from .base import Quantizer, QuantizerOutput, linear32, straight_through

__all__ = ["VQ"]


@QUANTIZERS.register
class VQ(Quantizer):
    """Nearest-neighbour vector quantizer with a learned codebook of ``codebook_size`` vectors.

    Forward: ``z`` of shape ``(B, dim, *S)``, any float dtype (fp32, bf16, fp16; under autocast or not).
    Each token ``z_t ∈ R^dim`` is projected to ``x_t = W_in z_t + b_in ∈ R^codebook_dim`` (only when
    ``codebook_dim != dim``), optionally l2-normalized, and replaced by its nearest code
    ``q_t = e_k``, ``k = argmin_j ‖x_t − e_j‖²`` (squared Euclidean distance; with ``use_l2_norm`` the
    codes are normalized too, so this is the largest cosine similarity). The output is
    ``W_out q_t + b_out`` with a straight-through gradient to ``x_t``. Projections, distances and losses
    run in float32 with autocast disabled; ``quantized`` has the dtype of ``z``, ``indices`` are int64.

    Loss (codebook space, means over all elements)::

        commitment_weight · mean((x − sg(q))²) + codebook_weight · mean((sg(x) − q)²)

    The codebook term is dropped with ``ema_update``, where the codebook follows exponential moving
    averages instead of gradients: per code ``k``, with batch count ``n_k`` and batch sum ``s_k`` of the
    vectors assigned to it (summed over ranks under ``torch.distributed``),
    ``N_k ← d·N_k + (1−d)·n_k``, ``S_k ← d·S_k + (1−d)·s_k``, ``e_k = S_k / Ñ_k`` with Laplace smoothing
    ``Ñ_k = (N_k + ε) / (Σ_j N_j + K·ε) · Σ_j N_j``. ``N`` starts at 1 and ``S`` at the initial codebook.

    Dead codes: with ``dead_code_threshold > 0``, every training forward first replaces each code whose
    usage ``N_k`` (the EMA count above; without ``ema_update`` the same EMA of counts is kept as usage
    statistics only) is below the threshold by a random vector of the current batch (rank 0's batch,
    broadcast, under ``torch.distributed``), and resets its usage to ``max(1, threshold)``. The restart
    happens before the lookup so no autograd graph holds the overwritten codebook.

    All state (codebook, ``cluster_size``, ``embed_sum``) lives in parameters or buffers, so a checkpoint
    resumes exactly. Updates happen only in training mode.

    Metrics: ``commitment``; ``codebook`` (without ``ema_update``); ``dead_codes`` (with a threshold: the
    number of codes below it at this step, before any restart).

    Args:
        dim: channels ``C`` of the input.
        codebook_size: number of codes ``K``.
        codebook_dim: dimension of the codes; None (default) for ``dim``. Any other value adds linear
            projections ``dim → codebook_dim`` before and ``codebook_dim → dim`` after the lookup.
        commitment_weight: weight of the commitment loss (VQ-VAE: 0.25).
        codebook_weight: weight of the codebook loss (VQ-VAE: 1); unused with ``ema_update``.
        use_l2_norm: l2-normalize inputs and codes (cosine-similarity lookup, ViT-VQGAN).
        ema_update: update the codebook by EMA of assigned vectors instead of gradients.
        ema_decay: decay ``d`` of the EMAs (also of the usage statistics); in ``[0, 1)``.
        ema_epsilon: Laplace-smoothing ``ε`` of the EMA cluster sizes (0 disables smoothing).
        dead_code_threshold: restart codes whose usage is below this; 0 (default) disables restarts.

    Raises:
        ValueError: a non-positive size, ``ema_decay`` outside ``[0, 1)``, a negative ``ema_epsilon`` or
            ``dead_code_threshold``; an input that is not a non-empty, finite ``(B, dim, *S)``
            floating-point tensor (see :meth:`Quantizer.check_input`).
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int = 1024,
        codebook_dim: int | None = None,
        commitment_weight: float = 0.25,
        codebook_weight: float = 1.0,
        use_l2_norm: bool = False,
        ema_update: bool = False,
        ema_decay: float = 0.99,
        ema_epsilon: float = 1e-5,
        dead_code_threshold: float = 0.0,
    ) -> None:
        super().__init__()
        codebook_dim = dim if codebook_dim is None else codebook_dim
        if dim < 1 or codebook_size < 1 or codebook_dim < 1:
            raise ValueError(
                f"VQ needs dim, codebook_size and codebook_dim >= 1, got {dim}, {codebook_size}, {codebook_dim}"
            )
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        if ema_epsilon < 0 or dead_code_threshold < 0:
            raise ValueError(
                f"ema_epsilon and dead_code_threshold must be >= 0, got {ema_epsilon}, {dead_code_threshold}"
            )
        self.dim = dim
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.commitment_weight = commitment_weight
        self.codebook_weight = codebook_weight
        self.use_l2_norm = use_l2_norm
        self.ema_update = ema_update
        self.ema_decay = ema_decay
        self.ema_epsilon = ema_epsilon
        self.dead_code_threshold = dead_code_threshold

        if codebook_dim != dim:
            self.project_in: nn.Module = nn.Linear(dim, codebook_dim)
            self.project_out: nn.Module = nn.Linear(codebook_dim, dim)
        else:
            self.project_in = nn.Identity()
            self.project_out = nn.Identity()

        init = torch.randn(codebook_size, codebook_dim)
        if ema_update:
            self.register_buffer("codebook", init)
            self.register_buffer("embed_sum", init.clone())
        else:
            self.codebook = nn.Parameter(init)
        # EMA of per-code assignment counts: the EMA cluster sizes, or usage statistics for restarts.
        self.register_buffer("cluster_size", torch.ones(codebook_size))

    # -- lookup ------------------------------------------------------------------------------------

    def _tokens(self, z: Tensor) -> Tensor:
        """``(B, dim, *S)`` → ``(N, codebook_dim)`` float32 lookup vectors (projected, normalized if asked)."""
        x = linear32(self.project_in, z.float().movedim(1, -1).reshape(-1, self.dim))
        return F.normalize(x, dim=-1) if self.use_l2_norm else x

    def _codes(self) -> Tensor:
        """The codebook as used for lookup: ``(K, codebook_dim)`` float32, l2-normalized if asked."""
        codebook = self.codebook.float()
        return F.normalize(codebook, dim=-1) if self.use_l2_norm else codebook

    @staticmethod
    def _nearest(x: Tensor, codes: Tensor) -> Tensor:
        """``argmin_k ‖x − e_k‖²`` per row; ``‖x‖²`` is dropped (constant per row), one ``N × K`` matrix."""
        distances = torch.addmm(codes.pow(2).sum(-1), x, codes.T, alpha=-2.0)
        return distances.argmin(-1)

    def _to_output(self, q: Tensor, shape: torch.Size) -> Tensor:
        """``(N, codebook_dim)`` codes → ``(B, dim, *S)`` float32 outputs; shared by forward and lookup."""
        return linear32(self.project_out, q).reshape(*shape, self.dim).movedim(-1, 1)

    # -- training-time state updates ---------------------------------------------------------------

    @torch.no_grad()
    def _restart_dead_codes(self, x: Tensor) -> Tensor:
        """Replace codes with usage below the threshold by random rows of ``x``; return how many were dead.

        Sync-free: a candidate is drawn for every code and ``torch.where`` keeps the live ones.
        """
        dead = self.cluster_size < self.dead_code_threshold
        # x is never empty: check_input refuses empty batches (every rank gets full batches under DDP).
        candidates = x[torch.randint(x.shape[0], (self.codebook_size,), device=x.device)]
        if is_distributed():
            dist.broadcast(candidates, src=0)  # identical codebooks on every rank
        self.codebook.copy_(torch.where(dead[:, None], candidates.to(self.codebook.dtype), self.codebook))
        reset = max(1.0, self.dead_code_threshold)
        self.cluster_size.copy_(torch.where(dead, torch.full_like(self.cluster_size, reset), self.cluster_size))
        if self.ema_update:
            self.embed_sum.copy_(torch.where(dead[:, None], candidates * reset, self.embed_sum))
        return dead.sum().float()

    @torch.no_grad()
    def _update_statistics(self, x: Tensor, indices: Tensor) -> None:
        """EMA of assignment counts (always) and, with ``ema_update``, of sums and the codebook itself."""
        counts = x.new_zeros(self.codebook_size).index_add_(0, indices, torch.ones_like(x[:, 0]))
        sums = None
        if self.ema_update:
            sums = x.new_zeros(self.codebook_size, self.codebook_dim).index_add_(0, indices, x)
        all_reduce_sum(counts)
        if sums is not None:
            all_reduce_sum(sums)
        decay = self.ema_decay
        self.cluster_size.mul_(decay).add_(counts, alpha=1.0 - decay)
        if sums is not None:
            self.embed_sum.mul_(decay).add_(sums, alpha=1.0 - decay)
            total = self.cluster_size.sum()
            eps = self.ema_epsilon
            smoothed = (self.cluster_size + eps) / (total + self.codebook_size * eps) * total
            self.codebook.copy_(self.embed_sum / smoothed[:, None])

    # -- contract ----------------------------------------------------------------------------------

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        shape = z.movedim(1, -1).shape[:-1]  # (B, *S)
        with torch.autocast(z.device.type, enabled=False):
            x = self._tokens(z)  # (N, codebook_dim)
            metrics: dict[str, Tensor] = {}
            if self.dead_code_threshold > 0:
                if self.training:
                    metrics["dead_codes"] = self._restart_dead_codes(x.detach())
                else:
                    metrics["dead_codes"] = (self.cluster_size < self.dead_code_threshold).sum().float()
            codes = self._codes()
            with torch.no_grad():
                indices = self._nearest(x.detach(), codes)
            q = F.embedding(indices, codes)  # carries the codebook gradient (non-EMA)
            commitment = (x - q.detach()).pow(2).mean()
            loss = self.commitment_weight * commitment
            metrics["commitment"] = commitment.detach()
            if not self.ema_update:
                codebook_loss = (x.detach() - q).pow(2).mean()
                loss = loss + self.codebook_weight * codebook_loss
                metrics["codebook"] = codebook_loss.detach()
            if self.training:
                self._update_statistics(x.detach(), indices)
            # Straight-through in codebook space so both projections get the reconstruction gradient; the
            # forward value is exactly project_out(q), computed as in indices_to_codes (the quantizer contract,
            # docs/quantizers.md).
            quantized = self._to_output(straight_through(x, q.detach()), shape)
        return QuantizerOutput(quantized.to(z.dtype), indices.reshape(shape), loss, metrics)

    def quantize_indices(self, z: Tensor) -> Tensor:
        """``(B, dim, *S)`` → ``(B, *S)`` int64 nearest-code indices, equal to ``forward(z).indices`` in eval mode.

        Only the lookup: no losses, no output projection, and no state update in any mode (no dead-code
        restart, no EMA or usage statistics).

        Raises:
            ValueError: as :meth:`Quantizer.check_input`.
        """
        self.check_input(z)
        shape = z.movedim(1, -1).shape[:-1]  # (B, *S)
        with torch.no_grad(), torch.autocast(z.device.type, enabled=False):
            return self._nearest(self._tokens(z), self._codes()).reshape(shape)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """``(B, *S)`` integer ids in ``[0, codebook_size)`` → ``(B, dim, *S)`` float32 codes (after any projection).

        Raises:
            ValueError: as :meth:`Quantizer.check_indices` (non-integer dtype, id outside the vocabulary).
        """
        self.check_indices(indices)
        with torch.autocast(indices.device.type, enabled=False):
            q = F.embedding(indices.reshape(-1).long(), self._codes())
            return self._to_output(q, indices.shape)
