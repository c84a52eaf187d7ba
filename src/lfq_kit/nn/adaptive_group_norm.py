"""Adaptive GroupNorm conditioned on the quantized latent, MAGVIT-v2 (arXiv 2310.05737) Sec. 3.2, Table 5.

``AdaGN(x, c) = GN(x) · (1 + γ(c)) + β(c)``: an affine-free per-frame GroupNorm whose scale and shift come
from the quantized latent ``c``, mapped per channel and resized (nearest) to the feature grid, as in
StyleGAN's modulation but per position.

:class:`OpenMagvit2AdaptiveGroupNorm` is Open-MAGVIT2's variant (scale and shift from the latent's per-channel
statistics). It is a second layer, not a setting of the first: the parameters differ (two maps of statistics
instead of one per-position projection), so weights of one do not convert into the other.

Causal resizing in time. The decoder's feature grid at temporal factor ``r`` has ``1 + r·(T_c − 1)`` frames
for ``T_c`` latent frames, and the causal encoder built latent frame ``j`` from input frames
``r·(j − 1) + 1 … r·j`` (frame 0 alone for ``j = 0``). Feature frame ``t`` therefore takes latent frame
``ceil(t / r)``: the one whose block holds ``t``; it never reads a later latent frame. Plain
``F.interpolate(mode="nearest")`` happens to stay causal on these grids but lags (it assigns ``t = 1`` to
latent 0), so the index is computed explicitly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .frame_group_norm import FrameGroupNorm

__all__ = ["AdaptiveGroupNorm", "OpenMagvit2AdaptiveGroupNorm", "causal_frame_index", "resize_condition"]


def causal_frame_index(num_out: int, num_in: int, device: torch.device | None = None) -> Tensor:
    """``(num_out,)`` int64: the condition frame each output frame reads, ``ceil(t · (num_in − 1) / (num_out − 1))``.

    On the decoder's grids (``num_out − 1 = r·(num_in − 1)``) this is ``ceil(t / r)``; in general it is
    non-decreasing, starts at 0, ends at ``num_in − 1`` and never exceeds the causally aligned frame.

    Raises:
        ValueError: ``num_out < num_in`` (no causal alignment exists), or a size below 1.
    """
    if num_in < 1 or num_out < num_in:
        raise ValueError(f"cannot causally resize {num_in} condition frames to {num_out} frames (needs 1 ≤ in ≤ out)")
    t = torch.arange(num_out, device=device)
    if num_in == 1:
        return torch.zeros_like(t)
    return (t * (num_in - 1) + (num_out - 2)) // (num_out - 1)  # integer ceil


def resize_condition(c: Tensor, size: tuple[int, ...]) -> Tensor:
    """Nearest resize of ``c: (B, C, [T,] H, W)`` to ``size = ([T,] H, W)``; time causally (see module docstring)."""
    if c.ndim == 5 and c.shape[2] != size[0]:
        c = c.index_select(2, causal_frame_index(size[0], c.shape[2], c.device))
    if tuple(c.shape[2:]) != tuple(size):
        c = F.interpolate(c, size=size, mode="nearest")  # time already matches: spatial only
    return c


class AdaptiveGroupNorm(nn.Module):
    """Affine-free per-frame GroupNorm modulated by a condition: ``x̂ · (1 + γ(c)) + β(c)``.

    ``γ, β = Linear(c)`` per position (``cond_channels → 2·num_channels``), computed at the condition's own
    resolution and then resized: a pointwise map commutes with nearest resizing, so this is exact and cheap.
    The projection starts at zero, so an untrained layer is a plain affine-free GroupNorm.

    Shapes: ``x: (B, C, T, H, W)`` with ``c: (B, C_c, T_c, H_c, W_c)``, ``T_c ≤ T``; or images
    ``x: (B, C, H, W)`` with ``c: (B, C_c, H_c, W_c)``. Returns the shape of ``x``. Output frame ``t``
    depends on ``x`` frame ``t`` and condition frame ``ceil(t·(T_c − 1)/(T − 1))`` only.

    Args:
        num_channels: ``C`` of the features.
        cond_channels: ``C_c`` of the condition (the quantized latent: 18 in the paper).
        num_groups: groups of the normalization; must divide ``num_channels``.
        eps: added to the variance.

    Raises:
        ValueError: mismatched ranks, batch sizes or channel counts; more condition frames than feature frames.
    """

    conditioned = True  # ResBlock and the decoders pass the condition to layers that set this

    def __init__(self, num_channels: int, cond_channels: int, num_groups: int = 32, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.cond_channels = cond_channels
        self.norm = FrameGroupNorm(num_channels, num_groups, eps, affine=False)
        self.proj = nn.Linear(cond_channels, 2 * num_channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        if cond.ndim != x.ndim or cond.shape[0] != x.shape[0] or cond.shape[1] != self.cond_channels:
            raise ValueError(
                f"AdaptiveGroupNorm expects a condition (B, {self.cond_channels}, ...) of the rank and batch of "
                f"x {tuple(x.shape)}, got {tuple(cond.shape)}"
            )
        scale_shift = self.proj(cond.movedim(1, -1)).movedim(-1, 1)
        gamma, beta = resize_condition(scale_shift, tuple(x.shape[2:])).chunk(2, dim=1)
        return self.norm(x) * (1 + gamma) + beta


class OpenMagvit2AdaptiveGroupNorm(nn.Module):
    """Open-MAGVIT2's AdaGN: ``GN(x) · γ(std(c)) + β(mean(c))``, from the whole latent's statistics.

    Per example and latent channel, ``mean(c)`` and ``std(c) = sqrt(var(c) + eps)`` (the *unbiased* variance, as
    ``torch.var``'s default) over every position of the condition: ``H × W`` for an image, ``T × H × W`` for a
    clip. ``γ`` and ``β`` are two ``Linear(cond_channels, num_channels)``; there is no ``1 +``. Reference:
    TencentARC/SEED-Voken ``src/Open_MAGVIT2/modules/diffusionmodules/improved_model.py`` and
    ``improved_video_model.py`` (``AdaptiveGroupNorm``). It exists so their weights run in lfq-kit.

    NOT causal on clips: every output frame reads the statistics of the whole latent, later frames included.
    Images, and decoders that fold frames into the batch (:class:`~lfq_kit.backbones.Image2dDecoder`), are
    unaffected. Initialized as a plain affine-free GroupNorm (``γ ≡ 1``, ``β ≡ 0``).

    Shapes: ``x: (B, C, [T,] H, W)``, ``cond: (B, C_c, ...)`` any grid; returns the shape of ``x``.

    Args:
        num_channels: ``C`` of the features.
        cond_channels: ``C_c`` of the condition (the quantized latent).
        num_groups: groups of the normalization; must divide ``num_channels``.
        eps: added to the normalization's variance and to the condition's variance (Open-MAGVIT2: 1e-6).
        norm_layer: the affine-free GroupNorm, ``norm_layer(num_channels, num_groups, eps, affine=False)``:
            :class:`~lfq_kit.nn.FrameGroupNorm`, or :class:`~lfq_kit.nn.ClipGroupNorm` as in their video model.

    Raises:
        ValueError: mismatched batch sizes or condition channels.
    """

    conditioned = True

    def __init__(
        self,
        num_channels: int,
        cond_channels: int,
        num_groups: int = 32,
        eps: float = 1e-6,
        norm_layer: Callable[..., nn.Module] = FrameGroupNorm,
    ) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.cond_channels = cond_channels
        self.eps = eps
        self.norm = norm_layer(num_channels, num_groups, eps, affine=False)
        self.gamma = nn.Linear(cond_channels, num_channels)
        self.beta = nn.Linear(cond_channels, num_channels)
        nn.init.zeros_(self.gamma.weight)
        nn.init.ones_(self.gamma.bias)
        nn.init.zeros_(self.beta.weight)
        nn.init.zeros_(self.beta.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        if cond.ndim < 3 or cond.shape[0] != x.shape[0] or cond.shape[1] != self.cond_channels:
            raise ValueError(
                f"OpenMagvit2AdaptiveGroupNorm expects a condition (B, {self.cond_channels}, ...) of the batch of "
                f"x {tuple(x.shape)}, got {tuple(cond.shape)}"
            )
        flat = cond.flatten(2)
        scale = self.gamma((flat.var(dim=-1) + self.eps).sqrt())
        shift = self.beta(flat.mean(dim=-1))
        view = (*scale.shape, *([1] * (x.ndim - 2)))
        return self.norm(x) * scale.view(view) + shift.view(view)
