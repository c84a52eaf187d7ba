"""2D image CNN encoder and decoder: the MAGVIT-v2 tokenizer layout without time, for image-only tokenizers.

Same blocks, names and channel plan as :class:`~lfq_kit.backbones.Magvit2Encoder` / ``Magvit2Decoder``,
with 2D convs ("same" padding, learned stride-2 downsampling, pixel-shuffle upsampling), per-image
GroupNorm and the AdaptiveGroupNorm decoder. A trained pair inflates into the causal 3D pair by a pure weight
copy (``Magvit2Encoder.from_2d``, as Open-MAGVIT2 inflates its image tokenizer: TencentARC/SEED-Voken
``src/Open_MAGVIT2/models/video_lfqgan.py``).

Interface: images ``(B, C, H, W) → (B, D, H / s, W / s)``; videos ``(B, C, T, H, W)`` are accepted too and
every frame is coded independently (``T`` folded into the batch), giving ``(B, D, T, H / s, W / s)``. So
``temporal_compression == 1``, any ``T ≥ 1`` is valid, the models are trivially causal, and a tokenizer can
treat every encoder the same way (video in, video latent out).
"""

from __future__ import annotations

from collections.abc import Sequence

from einops import rearrange
from torch import Tensor

from ..nn import DepthToSpaceUpsample, SameConv2d
from ..registry import BACKBONES
from .conv_autoencoder import AdaptiveNormVariant, ConvDecoder, ConvEncoder, check_levels, norm_layers

__all__ = ["Image2dDecoder", "Image2dEncoder"]


def _per_frame(fn, x: Tensor) -> Tensor:
    """Apply a 4-D function to every frame of a 5-D tensor (frames folded into the batch)."""
    if x.ndim == 4:
        return fn(x)
    t = x.shape[2]
    return rearrange(fn(rearrange(x, "b c t h w -> (b t) c h w")), "(b t) c h w -> b c t h w", t=t)


@BACKBONES.register
class Image2dEncoder(ConvEncoder):
    """2D encoder: ``(B, in_channels, [T,] H, W) → (B, out_channels, [T,] H / s, W / s)``, ``s = 2^(levels − 1)``.

    Args:
        in_channels, base_channels, channel_multipliers, num_res_blocks, out_channels, num_groups: as
            :class:`~lfq_kit.backbones.Magvit2Encoder` (for 256 px ImageNet the paper adds a level:
            ``(1, 1, 2, 2, 4)``).
        norm_eps: added to the variance in every GroupNorm (1e-5; Open-MAGVIT2's image weights need 1e-6).

    Raises:
        ValueError: inconsistent settings; (forward) a rank or channel mismatch, or ``H``/``W`` not divisible
            by ``s``.
    """

    accepts_images = True

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers: Sequence[int] = (1, 2, 2, 4),
        num_res_blocks: int = 4,
        out_channels: int = 18,
        num_groups: int = 32,
        norm_eps: float = 1e-5,
    ) -> None:
        check_levels(channel_multipliers, num_res_blocks, None)
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            channel_multipliers=channel_multipliers,
            num_res_blocks=num_res_blocks,
            num_groups=num_groups,
            factors=[(2, 2)] * (len(channel_multipliers) - 1),
            conv_layer=SameConv2d,
            norm_layer=norm_layers(norm_eps).norm,
            downsample_layer=lambda c, f: SameConv2d(c, c, 3, stride=f),
            causal=True,
        )
        self.norm_eps = norm_eps

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return _per_frame(self.encode, x)


@BACKBONES.register
class Image2dDecoder(ConvDecoder):
    """2D decoder: ``(B, in_channels, [T,] H', W') → (B, out_channels, [T,] s·H', s·W')``, frames independent.

    Args:
        in_channels, out_channels, base_channels, channel_multipliers, num_res_blocks, num_groups,
            adaptive_norm, norm_eps, adaptive_norm_variant: as :class:`~lfq_kit.backbones.Magvit2Decoder`. Frames
            are decoded independently, so the ``"open_magvit2"`` AdaGN takes each image's own statistics (as
            Open-MAGVIT2's image decoder, SEED-Voken ``improved_model.py``) and the model stays causal.

    Raises:
        ValueError: inconsistent settings; (forward) a rank or channel mismatch.
    """

    accepts_images = True

    def __init__(
        self,
        in_channels: int = 18,
        out_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers: Sequence[int] = (1, 2, 2, 4),
        num_res_blocks: int = 4,
        num_groups: int = 32,
        adaptive_norm: bool = True,
        norm_eps: float = 1e-5,
        adaptive_norm_variant: AdaptiveNormVariant = "magvit2",
    ) -> None:
        check_levels(channel_multipliers, num_res_blocks, None)
        norms = norm_layers(norm_eps, adaptive_norm_variant)
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            channel_multipliers=channel_multipliers,
            num_res_blocks=num_res_blocks,
            num_groups=num_groups,
            factors=[(2, 2)] * (len(channel_multipliers) - 1),
            conv_layer=SameConv2d,
            norm_layer=norms.norm,
            upsample_layer=lambda c, f: DepthToSpaceUpsample(c, f, conv_layer=SameConv2d),
            adaptive_norm=adaptive_norm,
            causal=True,
            adaptive_norm_layer=norms.adaptive,
        )
        self.norm_eps = norm_eps
        self.adaptive_norm_variant = adaptive_norm_variant

    def forward(self, z: Tensor) -> Tensor:
        self.check_input(z)
        return _per_frame(self.decode, z)
