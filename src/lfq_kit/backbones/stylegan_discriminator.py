"""StyleGAN-style discriminators, MAGVIT-v2 (arXiv 2310.05737) appendix (the discriminator of the tokenizer figure).

3D (clips)::

    conv 3×3×3 3→128, LeakyReLU(0.2)
    ResBlockDown 128→256→512→512→512→512
        main: conv 3, LeakyReLU, blur-pool 2×2×2, conv 3, LeakyReLU;  skip: blur-pool, conv 1;  (main + skip)/√2
    conv 3×3×3, LeakyReLU → average pool to ``final_size`` → flatten → Linear, LeakyReLU, Linear → 1 logit

The paper flattens the last feature map, which ties the Linear layer to one input size. Here it is first
average-pooled to ``final_size``: ``(1, 4, 4)`` is exactly the grid a 17×128×128 clip reaches after five
blocks, so the paper's setting is unchanged, and other sizes (17×64×64, 1×32×32, ...) still work (a smaller
grid is repeated up to ``final_size``). Blur pooling leaves an axis of size 1 alone, so once time reaches one
frame (``17 → 8 → 4 → 2 → 1``, or a single image from the start) only space is pooled. Discriminators are
non-causal: they judge whole clips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ..nn import BlurPool2d, BlurPool3d, SameConv2d, SameConv3d
from ..registry import BACKBONES
from .base import Discriminator

__all__ = ["ResBlockDown", "StyleGANDiscriminator2d", "StyleGANDiscriminator3d"]


class ResBlockDown(nn.Module):
    """Residual block halving every axis longer than 1: ``(B, C_in, *S) → (B, C_out, *(S // 2))``.

    Args:
        in_channels, out_channels: channel counts.
        conv_layer: "same" conv class, ``conv_layer(in, out, kernel_size, bias=...)``.
        blur_layer: blur-pool class, ``blur_layer(filter_size)``.
        blur_filter_size: binomial taps (4: ``[1, 3, 3, 1]``).
        negative_slope: of the LeakyReLUs.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        conv_layer: Callable[..., nn.Module] = SameConv3d,
        blur_layer: Callable[..., nn.Module] = BlurPool3d,
        blur_filter_size: int = 4,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        self.conv1 = conv_layer(in_channels, in_channels, 3)
        self.conv2 = conv_layer(in_channels, out_channels, 3)
        self.blur = blur_layer(blur_filter_size)
        self.skip = conv_layer(in_channels, out_channels, 1, bias=False)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.conv2(self.blur(self.act(self.conv1(x)))))
        return (h + self.skip(self.blur(x))) * (1 / math.sqrt(2))


class _StyleGANDiscriminator(Discriminator):
    spatial_ndim: int

    def __init__(
        self,
        in_channels: int,
        base_channels: int,
        channel_multipliers: Sequence[int],
        final_size: Sequence[int],
        blur_filter_size: int,
        negative_slope: float,
        conv_layer: Callable[..., nn.Module],
        blur_layer: Callable[..., nn.Module],
    ) -> None:
        super().__init__()
        if len(final_size) != self.spatial_ndim or min(final_size) < 1:
            raise ValueError(f"final_size needs {self.spatial_ndim} positive sizes, got {tuple(final_size)}")
        self.in_channels = in_channels
        self.final_size = tuple(int(s) for s in final_size)
        self.conv_in = conv_layer(in_channels, base_channels, 3)
        blocks, c = [], base_channels
        for m in channel_multipliers:
            blocks.append(ResBlockDown(c, base_channels * m, conv_layer, blur_layer, blur_filter_size, negative_slope))
            c = base_channels * m
        self.blocks = nn.ModuleList(blocks)
        self.conv_out = conv_layer(c, c, 3)
        self.act = nn.LeakyReLU(negative_slope)
        self.fc1 = nn.Linear(c * math.prod(self.final_size), c)
        self.fc2 = nn.Linear(c, 1)

    def logits(self, x: Tensor) -> Tensor:
        h = self.act(self.conv_in(x))
        for blk in self.blocks:
            h = blk(h)
        h = self.act(self.conv_out(h))
        pool = F.adaptive_avg_pool3d if self.spatial_ndim == 3 else F.adaptive_avg_pool2d
        h = pool(h, self.final_size).flatten(1)
        return self.fc2(self.act(self.fc1(h)))

    def _check(self, x: Tensor, ranks: tuple[int, ...], shape: str) -> None:
        if x.ndim not in ranks or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects {shape} with C = {self.in_channels}, got {tuple(x.shape)}")


@BACKBONES.register
class StyleGANDiscriminator3d(_StyleGANDiscriminator):
    """Clip discriminator: ``(B, in_channels, T, H, W)`` → ``(B, 1)`` logits (input dtype), any ``T, H, W ≥ 1``.

    Args:
        in_channels: pixel channels.
        base_channels: channels of the first conv (paper: 128).
        channel_multipliers: output channels of each ResBlockDown relative to ``base_channels``
            (paper: ``(2, 4, 4, 4, 4)`` = 256, 512, 512, 512, 512).
        final_size: ``(T, H, W)`` grid fed to the first Linear (see the module docstring).
        blur_filter_size: binomial taps of the blur pools.
        negative_slope: of every LeakyReLU.

    Raises:
        ValueError: a bad ``final_size``; (forward) an input that is not ``(B, in_channels, T, H, W)``.
    """

    spatial_ndim = 3

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers: Sequence[int] = (2, 4, 4, 4, 4),
        final_size: Sequence[int] = (1, 4, 4),
        blur_filter_size: int = 4,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__(
            in_channels,
            base_channels,
            channel_multipliers,
            final_size,
            blur_filter_size,
            negative_slope,
            SameConv3d,
            BlurPool3d,
        )

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, (5,), "(B, C, T, H, W)")
        return self.logits(x)


@BACKBONES.register
class StyleGANDiscriminator2d(_StyleGANDiscriminator):
    """Image discriminator: ``(B, in_channels, H, W)`` → ``(B, 1)`` logits; a clip ``(B, in_channels, T, H, W)``
    is judged frame by frame → ``(B, T)`` logits.

    Args:
        in_channels, base_channels, channel_multipliers, blur_filter_size, negative_slope: as
            :class:`StyleGANDiscriminator3d`.
        final_size: ``(H, W)`` grid fed to the first Linear.

    Raises:
        ValueError: a bad ``final_size``; (forward) an input that is not 4-D or 5-D with ``in_channels``.
    """

    spatial_ndim = 2

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers: Sequence[int] = (2, 4, 4, 4, 4),
        final_size: Sequence[int] = (4, 4),
        blur_filter_size: int = 4,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__(
            in_channels,
            base_channels,
            channel_multipliers,
            final_size,
            blur_filter_size,
            negative_slope,
            SameConv2d,
            BlurPool2d,
        )

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, (4, 5), "(B, C, H, W) or (B, C, T, H, W)")
        if x.ndim == 4:
            return self.logits(x)
        b = x.shape[0]
        return rearrange(self.logits(rearrange(x, "b c t h w -> (b t) c h w")), "(b t) 1 -> b t", b=b)
