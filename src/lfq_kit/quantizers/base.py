"""The contract every quantizer keeps: :class:`Quantizer` and its return type :class:`QuantizerOutput`.

Inputs are channel-first, ``z: (B, C, *S)`` with ``C == quantizer.dim`` and any number of spatial /
temporal axes ``S`` (``(T, H, W)`` for video latents, ``(H, W)`` for images, ``()`` for vectors).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["Quantizer", "QuantizerOutput", "linear32", "straight_through"]


class QuantizerOutput(NamedTuple):
    """What every quantizer returns.

    Attributes:
        quantized: ``(B, C, *S)``, dtype of the input; forward value is the code, gradient is straight-through.
        indices: ``(B, *S)`` int64 in ``[0, codebook_size)``.
        loss: 0-dim float32 tensor, the quantizer's weighted auxiliary loss (commitment, entropy, codebook).
        metrics: unweighted, detached terms for logging (``{"commitment": ..., ...}``), 0-dim float32 tensors.
    """

    quantized: Tensor
    indices: Tensor
    loss: Tensor
    metrics: dict[str, Tensor]


def straight_through(z: Tensor, q: Tensor) -> Tensor:
    """Straight-through estimator: forward value exactly ``q``, gradient w.r.t. ``z`` the identity.

    Written as ``q + (z - sg(z))`` rather than ``z + sg(q - z)`` so the forward value equals ``q`` bit
    for bit (the contract: ``quantized == indices_to_codes(indices)``, docs/quantizers.md).
    """
    return q + (z - z.detach())


def linear32(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer(x)`` in float32 for an ``nn.Linear`` of any dtype (a model cast by ``precision="bf16-true"``)."""
    if isinstance(layer, nn.Linear):
        return nn.functional.linear(x, layer.weight.float(), None if layer.bias is None else layer.bias.float())
    return layer(x)


_INTEGER_DTYPES = (
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint16,
    torch.uint32,
    torch.uint64,
)


def _sync_free_check(z: Tensor, training: bool) -> bool:
    """Whether the finiteness check must avoid a host-device sync: training on an accelerator."""
    return training and z.device.type != "cpu"


def _has_async_assert(device: torch.device) -> bool:
    """Whether ``torch._assert_async`` checks on the device without a sync (CUDA; ROCm reports "cuda")."""
    return device.type == "cuda"


class Quantizer(nn.Module):
    """Base class of all quantizers (registered in :data:`lfq_kit.registry.QUANTIZERS`).

    Subclasses set :attr:`dim` and :attr:`codebook_size` and implement :meth:`forward` and
    :meth:`indices_to_codes`, and override :meth:`quantize_indices` with the index computation alone.
    ``forward`` and ``quantize_indices`` start with :meth:`check_input`, ``indices_to_codes`` with
    :meth:`check_indices`. Quantizers whose losses are annealed read the training step through
    :meth:`set_step`; the step is a persistent buffer, so it is checkpointed and resumes exactly.
    """

    dim: int
    codebook_size: int

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("step", torch.zeros((), dtype=torch.long), persistent=True)

    def set_step(self, step: int) -> None:
        """Tell the quantizer the current training step (drives annealed loss weights)."""
        self.step.fill_(int(step))

    def check_input(self, z: Tensor) -> None:
        """Raise ``ValueError`` unless ``z`` is a non-empty, finite ``(B, dim, *S)`` floating-point tensor.

        Shape, dtype and emptiness are host-side facts, checked always. Finiteness (no NaN, no ±Inf)
        needs the values:

        * on CPU tensors, and in eval mode on any device, it is checked in full and a non-finite input
          raises ``ValueError`` naming the quantizer and the NaN / Inf counts. On an accelerator in eval
          mode (validation, ``encode``, ``quantize_indices``) this costs one host-device sync per call;
        * in training mode on an accelerator it must not sync every step, so on CUDA it is a
          ``torch._assert_async``: the step that saw a non-finite latent fails at the next sync with a
          device-side assertion (which ends the process: the run has diverged anyway). On other
          accelerators it is skipped; a non-finite input then still poisons the outputs, since every
          quantizer's straight-through ``quantized`` (and LFQ's, BSQ's and VQ's loss) is NaN for it, and
          the training module's loss shows it.

        An empty batch (``N = 0`` tokens, e.g. ``(0, dim, T, H, W)`` or ``(B, dim, 0, H, W)``) is refused:
        its means (commitment, entropies) would be 0/0 = NaN, and no real caller sends one: the latent grid
        follows from the input shape, and ``DistributedSampler`` pads so that every rank gets full
        batches. (A rank that raised would leave the others waiting in their next collective until the
        launcher ends the job or the collective times out; with no empty batches this does not arise.)
        """
        name = type(self).__name__
        if z.ndim < 2 or z.shape[1] != self.dim:
            raise ValueError(f"{name} expects channel-first input (B, {self.dim}, *S); got shape {tuple(z.shape)}")
        if not z.is_floating_point():
            raise ValueError(f"{name} expects a floating-point input, got {z.dtype}")
        if z.numel() == 0:
            raise ValueError(f"{name} got an empty batch: input of shape {tuple(z.shape)} holds no tokens")
        sync_free = _sync_free_check(z, self.training)
        if sync_free and not _has_async_assert(z.device):
            return  # see above: the NaN shows in the outputs and the loss
        # One reduction pass, no (B, dim, *S) bool temporary: min and max propagate NaN and reach ±Inf.
        finite = torch.isfinite(torch.stack(torch.aminmax(z.detach()))).all()
        if sync_free:
            torch._assert_async(finite, f"{name}: the input holds NaN or Inf values")
            return
        if not finite:
            nan = int(torch.isnan(z).sum())
            inf = int(torch.isinf(z).sum())
            raise ValueError(
                f"{name} got a non-finite input: {nan} NaN and {inf} Inf values among {z.numel()} "
                f"(shape {tuple(z.shape)}); the encoder output or the data holds NaN/Inf"
            )

    def check_indices(self, indices: Tensor) -> None:
        """Raise ``ValueError`` unless ``indices`` is a non-empty integer ``(B, *S)`` tensor in ``[0, codebook_size)``.

        Float, bool and complex ids are refused (they would be truncated or taken as 0/1), as are ids
        outside the vocabulary, which the bit and digit arithmetic would otherwise alias onto valid codes.
        The range check costs one host-device sync (fine on the decode path; not for a training hot path).
        The message names the offending minimum and maximum and ``codebook_size``.
        """
        name = type(self).__name__
        if not isinstance(indices, Tensor):
            raise ValueError(f"{name}.indices_to_codes expects a tensor of token ids, got {type(indices).__name__}")
        if indices.dtype not in _INTEGER_DTYPES:
            raise ValueError(f"{name}.indices_to_codes expects integer token ids (int64), got dtype {indices.dtype}")
        if indices.ndim < 1 or indices.numel() == 0:
            raise ValueError(f"{name}.indices_to_codes expects non-empty (B, *S) ids, got shape {tuple(indices.shape)}")
        values = indices if indices.dtype.is_signed or indices.dtype == torch.uint8 else indices.long()
        lo, hi = torch.stack(torch.aminmax(values)).tolist()  # one sync for both bounds
        if lo < 0 or hi >= self.codebook_size:
            raise ValueError(
                f"{name}.indices_to_codes: token ids must lie in [0, {self.codebook_size}) "
                f"(codebook_size {self.codebook_size}), got min {lo} and max {hi}"
            )

    def forward(self, z: Tensor) -> QuantizerOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def quantize_indices(self, z: Tensor) -> Tensor:
        """``(B, dim, *S)`` latents → ``(B, *S)`` int64 indices, equal to ``forward(z).indices`` in eval mode.

        The inference path (``encode``, tokenizing datasets): it computes no loss and no entropy and
        updates no state (VQ's EMA and dead-code statistics are untouched even in training mode). It
        checks its input like ``forward`` (:meth:`check_input`).

        The built-in quantizers override it with their index computation alone. This default, for
        plugins, runs ``forward`` without gradients and keeps the indices: right for a quantizer whose
        ``forward`` updates no state; one with training-time state must override it.

        Raises:
            ValueError: as :meth:`check_input`.
        """
        with torch.no_grad():
            return self.forward(z).indices

    def indices_to_codes(self, indices: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``(B, *S)`` integer indices → ``(B, dim, *S)`` codes, equal to ``forward(z).quantized`` in eval mode.

        Implementations start with :meth:`check_indices`.
        """
        raise NotImplementedError

    @property
    def bits_per_token(self) -> float:
        """log2 of the vocabulary size, in bits."""
        return float(torch.tensor(float(self.codebook_size)).log2())
