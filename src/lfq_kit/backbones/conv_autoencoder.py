"""The convolutional encoder/decoder layout of the MAGVIT-v2 tokenizer, generic over its layers.

MAGVIT-v2 (arXiv 2310.05737, Sec. 3.2 and appendix figure; docs/tokenizer.md)::

    encoder: conv 3 → per level: num_res_blocks ResBlocks (the first changes channels), then a downsampler
             (not after the last level) → num_res_blocks ResBlocks → GN, Swish, conv 1 [→ head] → latent
    decoder: [head →] conv 3 → num_res_blocks ResBlocks → per level, deepest first: [AdaptiveGroupNorm on the latent],
             num_res_blocks ResBlocks (the first changes channels), then an upsampler (not after the
             shallowest level) → GN, Swish, conv 3 → pixels

Optional extras that are not in the paper: a shortcut from the input to the latent (and back), and a per-token
head between the conv stack and the latent (and back).

The registered backbones (:class:`~lfq_kit.backbones.Magvit2Encoder`, the 2D image CNN, MAGVIT v1) are this
layout with different conv, norm and resampling layers. Image and video variants therefore have the same
module tree, which is what makes 2D → 3D inflation a pure weight copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal, NamedTuple

from torch import Tensor, nn

from ..nn import AdaptiveGroupNorm, ClipGroupNorm, FrameGroupNorm, OpenMagvit2AdaptiveGroupNorm, ResBlock
from ..nn.checkpointing import maybe_checkpoint
from .base import Decoder, Encoder

__all__ = ["AdaptiveNormVariant", "ConvDecoder", "ConvEncoder", "NormLayers", "check_levels", "norm_layers"]

LayerFactory = Callable[..., nn.Module]
AdaptiveNormVariant = Literal["magvit2", "open_magvit2"]


class NormLayers(NamedTuple):
    """The GroupNorm factory (``norm_layer(num_channels=..., num_groups=...)``) and the adaptive one
    (``adaptive(channels, cond_channels, num_groups)``) of a backbone."""

    norm: LayerFactory
    adaptive: LayerFactory


def norm_layers(eps: float, adaptive_variant: AdaptiveNormVariant = "magvit2", clip_wide: bool = False) -> NormLayers:
    """The norms a backbone's settings select.

    Args:
        eps: of every GroupNorm (lfq-kit: 1e-5; Open-MAGVIT2: 1e-6).
        adaptive_variant: ``"magvit2"`` (:class:`~lfq_kit.nn.AdaptiveGroupNorm`, per position, ``1 + γ``) or
            ``"open_magvit2"`` (:class:`~lfq_kit.nn.OpenMagvit2AdaptiveGroupNorm`, statistics of the whole latent).
        clip_wide: :class:`~lfq_kit.nn.ClipGroupNorm` (statistics over the whole clip, not causal) instead of
            :class:`~lfq_kit.nn.FrameGroupNorm`.

    Raises:
        ValueError: an unknown ``adaptive_variant``.
    """
    base = ClipGroupNorm if clip_wide else FrameGroupNorm
    if adaptive_variant == "magvit2":
        adaptive = partial(AdaptiveGroupNorm, eps=eps)
    elif adaptive_variant == "open_magvit2":
        adaptive = partial(OpenMagvit2AdaptiveGroupNorm, eps=eps, norm_layer=base)
    else:
        raise ValueError(f"adaptive_norm_variant must be 'magvit2' or 'open_magvit2', got {adaptive_variant!r}")
    return NormLayers(partial(base, eps=eps), adaptive)


def check_levels(channel_multipliers: Sequence[int], num_res_blocks: int, temporal: Sequence[bool] | None) -> None:
    """Raise ``ValueError`` for an empty multiplier list, ``num_res_blocks < 1``, or a temporal flag list whose
    length is not ``len(channel_multipliers) − 1`` (one flag per downsampler)."""
    if len(channel_multipliers) < 1 or min(channel_multipliers) < 1:
        raise ValueError(f"channel_multipliers must be a non-empty list of positive ints, got {channel_multipliers!r}")
    if num_res_blocks < 1:
        raise ValueError(f"num_res_blocks must be ≥ 1, got {num_res_blocks}")
    if temporal is not None and len(temporal) != len(channel_multipliers) - 1:
        raise ValueError(
            f"temporal_downsample needs one flag per downsampler (len(channel_multipliers) − 1 = "
            f"{len(channel_multipliers) - 1}), got {list(temporal)!r}"
        )


def _compression(factors: Sequence[Sequence[int]]) -> tuple[int, int]:
    """(temporal, spatial) compression of a list of per-axis factors ``(s_t, s_h, s_w)`` or ``(s_h, s_w)``."""
    temporal = math.prod(f[0] for f in factors) if factors and len(factors[0]) == 3 else 1
    spatial = math.prod(f[-1] for f in factors)
    return temporal, spatial


class _Level(nn.Module):
    """One resolution level: optional conditioned norm, residual blocks, optional resampler."""

    def __init__(self, blocks: list[nn.Module], resample: nn.Module, norm: nn.Module | None = None) -> None:
        super().__init__()
        if norm is not None:
            self.norm = norm
        self.blocks = nn.ModuleList(blocks)
        self.resample = resample


class ConvEncoder(Encoder):
    """Generic MAGVIT-v2-layout encoder: ``(B, in_channels, *S) → (B, out_channels, *S')``.

    Not registered; the registered encoders subclass it with fixed layers and typed, YAML-friendly signatures.

    Args:
        in_channels: pixel channels.
        out_channels: latent dim.
        base_channels: channels of the first level; level ``i`` has ``base_channels · channel_multipliers[i]``.
        channel_multipliers: one per level.
        num_res_blocks: residual blocks per level and in the middle stage.
        num_groups: groups of every GroupNorm.
        factors: per downsampler (``len(channel_multipliers) − 1`` of them) the per-axis factors,
            ``(s_t, s_h, s_w)`` for videos or ``(s_h, s_w)`` for images.
        conv_layer: ``conv_layer(in, out, kernel_size)``, "same"-sized.
        norm_layer: ``norm_layer(num_channels=..., num_groups=...)``.
        downsample_layer: ``downsample_layer(channels, factors)``.
        causal: whether output frame ``t`` only depends on frames ``≤ t`` (sets the clip-length rule).
        shortcut_layer: None, or ``shortcut_layer(in_channels, out_channels)`` (``(in_channels, width)`` with a
            ``head_layer``), a module mapping the input straight to the latent grid whose output is added to
            the last conv's (e.g. :class:`~lfq_kit.nn.TubeletEmbed`).
        head_layer: None (the paper's layout: the last conv gives ``out_channels``), or
            ``head_layer(width, out_channels)``, a per-token module (e.g. :class:`~lfq_kit.nn.TokenMLP`) applied
            to the latent; the last conv and the shortcut then give ``width``, the deepest level's channels.
        activation_checkpointing: in training, keep only each residual block's input and recompute the block in
            backward (:func:`~lfq_kit.nn.checkpointing.maybe_checkpoint`): less activation memory, about one
            more forward of the blocks per step, same outputs and gradients.

    Raises:
        ValueError: inconsistent level settings; (forward) an input whose shape breaks the rules of
            :class:`~lfq_kit.backbones.Encoder`.
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        base_channels: int,
        channel_multipliers: Sequence[int],
        num_res_blocks: int,
        num_groups: int,
        factors: Sequence[Sequence[int]],
        conv_layer: LayerFactory,
        norm_layer: LayerFactory,
        downsample_layer: LayerFactory,
        causal: bool,
        shortcut_layer: LayerFactory | None = None,
        head_layer: LayerFactory | None = None,
        activation_checkpointing: bool = False,
    ) -> None:
        check_levels(channel_multipliers, num_res_blocks, None)
        if len(factors) != len(channel_multipliers) - 1:
            raise ValueError(f"need {len(channel_multipliers) - 1} downsampling factors, got {len(factors)}")
        super().__init__(in_channels, out_channels, *_compression(factors), causal=causal)
        self.activation_checkpointing = activation_checkpointing
        self.base_channels = base_channels
        self.channel_multipliers = tuple(channel_multipliers)
        self.num_res_blocks = num_res_blocks
        self.num_groups = num_groups
        block = partial(ResBlock, num_groups=num_groups, conv_layer=conv_layer, norm_layer=norm_layer)
        widths = [base_channels * m for m in channel_multipliers]

        self.conv_in = conv_layer(in_channels, widths[0], 3)
        levels, c = [], widths[0]
        for i, width in enumerate(widths):
            blocks = [block(c if j == 0 else width, width) for j in range(num_res_blocks)]
            c = width
            down = downsample_layer(c, tuple(factors[i])) if i < len(widths) - 1 else nn.Identity()
            levels.append(_Level(blocks, down))
        self.levels = nn.ModuleList(levels)
        self.mid = nn.ModuleList(block(c, c) for _ in range(num_res_blocks))
        self.norm_out = norm_layer(num_channels=c, num_groups=num_groups)
        self.act = nn.SiLU()
        latent = out_channels if head_layer is None else c
        self.conv_out = conv_layer(c, latent, 1)
        self.shortcut = shortcut_layer(in_channels, latent) if shortcut_layer is not None else None
        self.head = head_layer(latent, out_channels) if head_layer is not None else None

    def _block(self, blk: nn.Module, h: Tensor) -> Tensor:
        return maybe_checkpoint(blk, h, enabled=self.activation_checkpointing and self.training)

    def encode(self, x: Tensor) -> Tensor:
        """The layer stack without input checks or reshaping."""
        h = self.conv_in(x)
        for level in self.levels:
            for blk in level.blocks:
                h = self._block(blk, h)
            h = level.resample(h)
        for blk in self.mid:
            h = self._block(blk, h)
        z = self.conv_out(self.act(self.norm_out(h)))
        if self.shortcut is not None:
            z = z + self.shortcut(x)
        return z if self.head is None else self.head(z)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return self.encode(x)


class ConvDecoder(Decoder):
    """Generic MAGVIT-v2-layout decoder: ``(B, in_channels, *S') → (B, out_channels, *S)``.

    The latent ``z`` (with a ``head_layer``: ``head(z)``) is the input of the first conv and also the condition
    of each level's :class:`~lfq_kit.nn.AdaptiveGroupNorm` (``adaptive_norm=True``). Arguments as
    :class:`ConvEncoder`, plus:

    Args:
        upsample_layer: ``upsample_layer(channels, factors)``; ``factors`` are listed in encoder order and
            undone in reverse.
        adaptive_norm: one AdaptiveGroupNorm at the start of each level (paper Table 5, "+adaptive GN").
        adaptive_norm_layer: that norm, ``adaptive_norm_layer(channels, cond_channels, num_groups)``:
            :class:`~lfq_kit.nn.AdaptiveGroupNorm` (default) or :class:`~lfq_kit.nn.OpenMagvit2AdaptiveGroupNorm`.
        shortcut_layer: None, or ``shortcut_layer(in_channels, out_channels)`` (``(width, out_channels)`` with a
            ``head_layer``), a module mapping the latent straight to the output grid whose output is added to
            the pixels (e.g. :class:`~lfq_kit.nn.TubeletUnembed`).
        head_layer: None (the paper's layout), or ``head_layer(in_channels, width)``, a per-token module (e.g.
            :class:`~lfq_kit.nn.TokenMLP`) applied to the latent first; its output, of the deepest level's
            ``width``, then feeds the first conv, the adaptive norms and the shortcut.
        activation_checkpointing: as :class:`ConvEncoder`'s (each residual block).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int,
        base_channels: int,
        channel_multipliers: Sequence[int],
        num_res_blocks: int,
        num_groups: int,
        factors: Sequence[Sequence[int]],
        conv_layer: LayerFactory,
        norm_layer: LayerFactory,
        upsample_layer: LayerFactory,
        adaptive_norm: bool,
        causal: bool,
        shortcut_layer: LayerFactory | None = None,
        head_layer: LayerFactory | None = None,
        activation_checkpointing: bool = False,
        adaptive_norm_layer: LayerFactory = AdaptiveGroupNorm,
    ) -> None:
        check_levels(channel_multipliers, num_res_blocks, None)
        if len(factors) != len(channel_multipliers) - 1:
            raise ValueError(f"need {len(channel_multipliers) - 1} upsampling factors, got {len(factors)}")
        super().__init__(in_channels, out_channels, *_compression(factors), causal=causal)
        self.activation_checkpointing = activation_checkpointing
        self.base_channels = base_channels
        self.channel_multipliers = tuple(channel_multipliers)
        self.num_res_blocks = num_res_blocks
        self.num_groups = num_groups
        self.adaptive_norm = adaptive_norm
        block = partial(ResBlock, num_groups=num_groups, conv_layer=conv_layer, norm_layer=norm_layer)
        widths = [base_channels * m for m in channel_multipliers]

        c = widths[-1]
        latent = in_channels if head_layer is None else c
        self.head = head_layer(in_channels, latent) if head_layer is not None else None
        self.conv_in = conv_layer(latent, c, 3)
        self.mid = nn.ModuleList(block(c, c) for _ in range(num_res_blocks))
        levels = []
        for i in reversed(range(len(widths))):
            norm = adaptive_norm_layer(c, latent, num_groups) if adaptive_norm else None
            blocks = [block(c if j == 0 else widths[i], widths[i]) for j in range(num_res_blocks)]
            c = widths[i]
            up = upsample_layer(c, tuple(factors[i - 1])) if i > 0 else nn.Identity()
            levels.append(_Level(blocks, up, norm))
        self.levels = nn.ModuleList(levels)
        self.norm_out = norm_layer(num_channels=c, num_groups=num_groups)
        self.act = nn.SiLU()
        self.conv_out = conv_layer(c, out_channels, 3)
        self.shortcut = shortcut_layer(latent, out_channels) if shortcut_layer is not None else None

    def _block(self, blk: nn.Module, h: Tensor) -> Tensor:
        return maybe_checkpoint(blk, h, enabled=self.activation_checkpointing and self.training)

    def decode(self, z: Tensor) -> Tensor:
        """The layer stack without input checks or reshaping."""
        if self.head is not None:
            z = self.head(z)
        h = self.conv_in(z)
        for blk in self.mid:
            h = self._block(blk, h)
        for level in self.levels:
            if self.adaptive_norm:
                h = level.norm(h, z)
            for blk in level.blocks:
                h = self._block(blk, h)
            h = level.resample(h)
        x = self.conv_out(self.act(self.norm_out(h)))
        return x if self.shortcut is None else x + self.shortcut(z)

    def forward(self, z: Tensor) -> Tensor:
        self.check_input(z)
        return self.decode(z)
