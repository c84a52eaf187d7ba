"""The MAGVIT v1 3D CNN tokenizer (Yu et al., CVPR 2023, arXiv 2212.05199), the "MAGVIT" baseline of
MAGVIT-v2 Table 5 (arXiv 2310.05737, Sec. 3.2 lists the changes from MAGVIT v1).

Differences from :mod:`~lfq_kit.backbones.magvit2`: non-causal 3D convs ("same" padding in time too),
average-pool downsampling, nearest upsampling followed by a conv, plain GroupNorm over (C, T, H, W), two
residual blocks per level, temporal downsampling in the EARLY levels, no adaptive norm.

Clip lengths: non-causal, so ``T`` must be divisible by ``r = 2^(temporal downsamplers)`` (4 by default:
16 frames → 4 latent frames) and decodes back to ``r·T'`` frames. ``T = 1`` is not valid with temporal
downsampling. Every output frame may depend on every input frame (GroupNorm spans the clip), so these models
are not subject to the causality invariant.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..nn import SameConv3d
from ..registry import BACKBONES
from .conv_autoencoder import ConvDecoder, ConvEncoder, check_levels

__all__ = ["Magvit1Decoder", "Magvit1Encoder", "NearestUpsampleConv"]


def _factors(temporal_downsample: Sequence[bool]) -> list[tuple[int, int, int]]:
    return [(2 if t else 1, 2, 2) for t in temporal_downsample]


class NearestUpsampleConv(nn.Module):
    """Nearest-neighbour upsampling by ``factors = (s_t, s_h, s_w)`` then a "same" 3×3×3 conv.

    ``(B, C, T, H, W) → (B, C, s_t·T, s_h·H, s_w·W)``; non-causal.
    """

    def __init__(self, channels: int, factors: Sequence[int] = (2, 2, 2)) -> None:
        super().__init__()
        self.factors = tuple(int(f) for f in factors)
        self.up = nn.Upsample(scale_factor=self.factors, mode="nearest")
        self.conv = SameConv3d(channels, channels, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(self.up(x))


@BACKBONES.register
class Magvit1Encoder(ConvEncoder):
    """MAGVIT v1 encoder: ``(B, in_channels, T, H, W) → (B, out_channels, T / r, H / s, W / s)``, non-causal.

    Args:
        in_channels: pixel channels.
        base_channels: channels of level 0 (UNSURE which width v1-B used; 128 matches v2's default).
        channel_multipliers: one per level.
        num_res_blocks: residual blocks per level and in the middle stage (v1: 2).
        temporal_downsample: per average-pool downsampler, whether it also halves time (v1: the early ones,
            ``(True, True, False)``).
        out_channels: latent dim (18 to plug into a 2^18 LFQ as in the Table 5 ablation; v1 itself fed a
            VQ codebook of larger embeddings).
        num_groups: groups of every GroupNorm.

    Raises:
        ValueError: inconsistent settings; (forward) ``T`` not divisible by ``r`` or ``H``/``W`` not by ``s``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers: Sequence[int] = (1, 2, 2, 4),
        num_res_blocks: int = 2,
        temporal_downsample: Sequence[bool] = (True, True, False),
        out_channels: int = 18,
        num_groups: int = 32,
    ) -> None:
        check_levels(channel_multipliers, num_res_blocks, temporal_downsample)
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            channel_multipliers=channel_multipliers,
            num_res_blocks=num_res_blocks,
            num_groups=num_groups,
            factors=_factors(temporal_downsample),
            conv_layer=SameConv3d,
            norm_layer=nn.GroupNorm,
            downsample_layer=lambda c, f: nn.AvgPool3d(f, f),
            causal=False,
        )
        self.temporal_downsample = tuple(bool(t) for t in temporal_downsample)


@BACKBONES.register
class Magvit1Decoder(ConvDecoder):
    """MAGVIT v1 decoder: ``(B, in_channels, T', H', W') → (B, out_channels, r·T', s·H', s·W')``, non-causal.

    Args:
        in_channels: latent dim.
        out_channels: pixel channels.
        base_channels, channel_multipliers, num_res_blocks, temporal_downsample, num_groups: as
            :class:`Magvit1Encoder`, in encoder order.

    Raises:
        ValueError: inconsistent settings; (forward) an input that is not ``(B, in_channels, T', H', W')``.
    """

    def __init__(
        self,
        in_channels: int = 18,
        out_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers: Sequence[int] = (1, 2, 2, 4),
        num_res_blocks: int = 2,
        temporal_downsample: Sequence[bool] = (True, True, False),
        num_groups: int = 32,
    ) -> None:
        check_levels(channel_multipliers, num_res_blocks, temporal_downsample)
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            channel_multipliers=channel_multipliers,
            num_res_blocks=num_res_blocks,
            num_groups=num_groups,
            factors=_factors(temporal_downsample),
            conv_layer=SameConv3d,
            norm_layer=nn.GroupNorm,
            upsample_layer=NearestUpsampleConv,
            adaptive_norm=False,
            causal=False,
        )
        self.temporal_downsample = tuple(bool(t) for t in temporal_downsample)
