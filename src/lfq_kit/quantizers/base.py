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
    for bit (invariant 8: ``quantized == indices_to_codes(indices)``).
    """
    return q + (z - z.detach())


def linear32(layer: nn.Module, x: Tensor) -> Tensor:
    """``layer(x)`` in float32 for an ``nn.Linear`` of any dtype (a model cast by ``precision="bf16-true"``)."""
    if isinstance(layer, nn.Linear):
        return nn.functional.linear(x, layer.weight.float(), None if layer.bias is None else layer.bias.float())
    return layer(x)


class Quantizer(nn.Module):
    """Base class of all quantizers (registered in :data:`lfq_kit.registry.QUANTIZERS`).

    Subclasses set :attr:`dim` and :attr:`codebook_size` and implement :meth:`forward` and
    :meth:`indices_to_codes`. Quantizers whose losses are annealed read the training step through
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
        """Raise ``ValueError`` unless ``z`` is ``(B, dim, *S)`` floating point."""
        if z.ndim < 2 or z.shape[1] != self.dim:
            raise ValueError(
                f"{type(self).__name__} expects channel-first input (B, {self.dim}, *S); got shape {tuple(z.shape)}"
            )
        if not z.is_floating_point():
            raise ValueError(f"{type(self).__name__} expects a floating-point input, got {z.dtype}")

    def forward(self, z: Tensor) -> QuantizerOutput:  # pragma: no cover - abstract
        raise NotImplementedError

    def indices_to_codes(self, indices: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``(B, *S)`` int64 indices → ``(B, dim, *S)`` codes, equal to ``forward(z).quantized`` in eval mode."""
        raise NotImplementedError

    @property
    def bits_per_token(self) -> float:
        """log2 of the vocabulary size, in bits."""
        return float(torch.tensor(float(self.codebook_size)).log2())
