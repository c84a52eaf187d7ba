"""Finite scalar quantization (FSQ), Mentzer et al., "Finite Scalar Quantization: VQ-VAE Made Simple",
arXiv 2309.15505, Sec. 3 and appendix A.1.

Each channel is bounded to a few levels and rounded; the codebook is the grid of all level combinations,
so, as in LFQ, nothing is looked up, nothing is learned in the codebook, and no auxiliary loss is needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..registry import QUANTIZERS
from .base import Quantizer, QuantizerOutput, linear32, straight_through

__all__ = ["FSQ"]

_BOUND_EPS = 1e-3  # shrinks the tanh range so rounding never reaches a level outside [0, L)


@QUANTIZERS.register
class FSQ(Quantizer):
    """Finite scalar quantizer with ``levels[i]`` levels on channel ``i``; vocabulary ``Π levels``.

    Forward: ``z`` of shape ``(B, dim, *S)``, any float dtype (fp32, bf16, fp16; under autocast or not).
    Per token, ``x = z`` (or ``W_in z + b_in`` when ``dim != len(levels)``) and per channel with
    ``L = levels[i]``, ``h = (L − 1)(1 − 10⁻³)/2``, ``o = 0.5`` for even ``L`` (else 0)::

        b = tanh(x + atanh(o / h)) · h − o          # bounded, b(0) = 0
        k = round(b) ∈ {−⌊L/2⌋, …, ⌈L/2⌉ − 1}       # integer level, straight-through gradient
        code = k / ⌊L/2⌋ ∈ [−1, 1]

    The even-``L`` offset makes ``L`` integers reachable; the shift ``atanh(o/h)`` puts ``x = 0`` on the
    code 0 (the paper writes ``tan``, which is nearly equal for ``L ≥ 4``). For ``L = 2`` no shift can
    reach 0, so the shift is 0 and the channel keeps the sign of ``x``: codes ``{−1, 0}``.

    Digits ``k + ⌊L/2⌋ ∈ [0, L)`` give ``index = Σ_i digit_i · Π_{j<i} L_j`` (channel 0 least
    significant), computed in int64 from integer digits, never through float arithmetic, so indices
    are exact and in ``[0, Π L)`` for every input dtype (bf16 included). Bounding and rounding run in
    float32 with autocast disabled; ``quantized`` has the dtype of ``z``. The loss is a float32 zero.

    Args:
        dim: channels ``C`` of the input (first, so a tokenizer can pass its latent channels); None (default) for
            ``len(levels)``. Any other value adds linear projections ``dim → len(levels)`` before and
            ``len(levels) → dim`` after quantization.
        levels: levels per channel, each ``>= 2`` (the paper recommends ``(8, 5, 5, 5)`` for about
            ``2^10`` codes and ``(8, 8, 8, 5, 5, 5)`` for about ``2^16``, with ``L_i >= 5``).

    Raises:
        ValueError: empty ``levels``, a level below 2, ``Π levels > 2^62``, ``dim < 1``; an input that
            is not a non-empty, finite ``(B, dim, *S)`` floating-point tensor (see
            :meth:`Quantizer.check_input`).
    """

    def __init__(self, dim: int | None = None, levels: Sequence[int] = (8, 5, 5, 5)) -> None:
        super().__init__()
        levels = tuple(int(level) for level in levels)
        if not levels or min(levels) < 2:
            raise ValueError(f"FSQ levels must be a non-empty list of integers >= 2, got {list(levels)}")
        codebook_size = math.prod(levels)
        if codebook_size > 2**62:
            raise ValueError(f"FSQ vocabulary Π levels = {codebook_size} exceeds 2^62 (int64 indices)")
        self.levels = levels
        self.num_channels = len(levels)
        self.dim = self.num_channels if dim is None else dim
        if self.dim < 1:
            raise ValueError(f"FSQ dim must be >= 1, got {dim}")
        self.codebook_size = codebook_size

        if self.dim != self.num_channels:
            self.project_in: nn.Module = nn.Linear(self.dim, self.num_channels)
            self.project_out: nn.Module = nn.Linear(self.num_channels, self.dim)
        else:
            self.project_in = nn.Identity()
            self.project_out = nn.Identity()

        half_l = [(level - 1) * (1 - _BOUND_EPS) / 2 for level in levels]
        offset = [0.5 if level % 2 == 0 else 0.0 for level in levels]
        shift = [math.atanh(o / h) if o < h else 0.0 for o, h in zip(offset, half_l)]
        basis = [math.prod(levels[:i]) for i in range(len(levels))]
        # Derived constants, rebuilt from `levels` on construction: not checkpointed.
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.long), persistent=False)
        half_width = [level // 2 for level in levels]
        self.register_buffer("_half_width", torch.tensor(half_width, dtype=torch.long), persistent=False)
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.long), persistent=False)
        self.register_buffer("_half_l", torch.tensor(half_l, dtype=torch.float32), persistent=False)
        self.register_buffer("_offset", torch.tensor(offset, dtype=torch.float32), persistent=False)
        self.register_buffer("_shift", torch.tensor(shift, dtype=torch.float32), persistent=False)

    def _tokens(self, z: Tensor) -> Tensor:
        """``(B, dim, *S)`` → ``(N, len(levels))`` float32 tokens (after the input projection, if any)."""
        return linear32(self.project_in, z.float().movedim(1, -1).reshape(-1, self.dim))

    def _bound(self, x: Tensor) -> Tensor:
        """Tokens → bounded values ``b`` (see the class docstring), float32."""
        return torch.tanh(x + self._shift) * self._half_l - self._offset

    def _digits(self, bounded: Tensor) -> Tensor:
        """Bounded values → int64 digits in ``[0, L)``; shared by forward and :meth:`quantize_indices`."""
        # The clamp is a no-op for finite inputs (the bound guarantees the range); it keeps NaN inputs
        # (possible in training on an accelerator, where the finiteness check does not sync) in range.
        return (bounded.round().long() + self._half_width).clamp(min=0).minimum(self._levels - 1)

    def _digits_to_indices(self, digits: Tensor, shape: torch.Size) -> Tensor:
        """``(N, len(levels))`` digits → ``(B, *S)`` int64 indices, channel 0 least significant."""
        return (digits * self._basis).sum(-1).reshape(shape)

    def _digits_to_codes(self, digits: Tensor) -> Tensor:
        """``(N, len(levels))`` int64 digits → float32 codes in ``[−1, 1]``."""
        return (digits - self._half_width).float() / self._half_width.float()

    def _to_output(self, codes: Tensor, shape: torch.Size) -> Tensor:
        """``(N, len(levels))`` codes → ``(B, dim, *S)`` float32 outputs; shared by forward and lookup."""
        return linear32(self.project_out, codes).reshape(*shape, self.dim).movedim(-1, 1)

    def forward(self, z: Tensor) -> QuantizerOutput:
        self.check_input(z)
        shape = z.movedim(1, -1).shape[:-1]  # (B, *S)
        with torch.autocast(z.device.type, enabled=False):
            bounded = self._bound(self._tokens(z))
            digits = self._digits(bounded)
            codes = self._digits_to_codes(digits)
            quantized = self._to_output(straight_through(bounded / self._half_width, codes), shape)
            indices = self._digits_to_indices(digits, shape)
            loss = torch.zeros((), dtype=torch.float32, device=z.device)
        return QuantizerOutput(quantized.to(z.dtype), indices, loss, {})

    def quantize_indices(self, z: Tensor) -> Tensor:
        """``(B, dim, *S)`` → ``(B, *S)`` int64 indices, equal to ``forward(z).indices`` (no codes, no graph).

        Raises:
            ValueError: as :meth:`Quantizer.check_input`.
        """
        self.check_input(z)
        shape = z.movedim(1, -1).shape[:-1]  # (B, *S)
        with torch.no_grad(), torch.autocast(z.device.type, enabled=False):
            return self._digits_to_indices(self._digits(self._bound(self._tokens(z))), shape)

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """``(B, *S)`` integer ids in ``[0, Π levels)`` → ``(B, dim, *S)`` float32 codes (after any projection).

        Raises:
            ValueError: as :meth:`Quantizer.check_indices` (non-integer dtype, id outside the vocabulary).
        """
        self.check_indices(indices)
        with torch.autocast(indices.device.type, enabled=False):
            digits = torch.div(indices.reshape(-1, 1).long(), self._basis, rounding_mode="floor") % self._levels
            return self._to_output(self._digits_to_codes(digits), indices.shape)
