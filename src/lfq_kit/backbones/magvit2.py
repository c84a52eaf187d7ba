"""The MAGVIT-v2 causal 3D CNN tokenizer encoder and decoder (Yu et al., arXiv 2310.05737, Sec. 3.2, appendix
figure; docs/tokenizer.md).

With the defaults (base 128, multipliers 1,2,2,4, four residual blocks, temporal downsampling after levels
1 and 2) a 17×128×128 clip maps to a 5×16×16 latent of 18 channels, and back::

    encoder  causal conv 3→128 | 4 ResBlock(128) | conv stride (1,2,2) | ResBlock(128→256), 3 ResBlock(256)
             | conv stride (2,2,2) | 4 ResBlock(256) | conv stride (2,2,2) | ResBlock(256→512), 3 ResBlock(512)
             | 4 ResBlock(512) | GN, Swish, conv 1×1×1 512→18
    decoder  causal conv 18→512 | 4 ResBlock(512) | per level, deepest first: AdaptiveGroupNorm(latent),
             4 ResBlocks, depth-to-space upsampler (2,2,2), (2,2,2), (1,2,2) | GN, Swish, causal conv →3

Every temporal operation is causal (convs padded before the clip, per-frame GroupNorm, trimmed
depth-to-space, causally resized AdaGN condition): a ``1 + 4k``-frame clip maps to ``1 + k`` latent frames
and latent frame ``j`` only depends on frames ``≤ 4j``; decoder output frame ``t`` only on latent frames
``≤ ceil(t / 4)``.

``tubelet_shortcut=True`` (not in the paper) adds a linear map of each token's ``r_t × s × s`` pixel tubelet
to the latent and its mirror to the decoder's output (:mod:`lfq_kit.nn.tubelet_shortcut`), causal as well.
``token_mlp_channels=N > 0`` (not in the paper) puts a per-token MLP (:mod:`lfq_kit.nn.token_mlp`) between the
latent grid and the quantizer's channels on both sides.

Settings that exist only to run Open-MAGVIT2's released video weights (docs/pretrained.md; off by default):
``norm_eps=1e-6``, ``adaptive_norm_variant="open_magvit2"``, ``keep_first_subframe=True`` and
``clip_wide_norm=True``. The last and the Open-MAGVIT2 AdaGN take statistics over the whole clip: with them the
model is NOT causal (the clip-length rule ``1 + r·k`` stays).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Literal

from ..nn import CausalConv3d, DepthToSpaceUpsample, TokenMLP, TubeletEmbed, TubeletUnembed, inflate_2d_to_3d
from ..registry import BACKBONES
from .conv_autoencoder import AdaptiveNormVariant, ConvDecoder, ConvEncoder, _compression, check_levels, norm_layers

if TYPE_CHECKING:
    from .image2d import Image2dDecoder, Image2dEncoder

__all__ = ["Magvit2Decoder", "Magvit2Encoder"]

PaddingMode = Literal["replicate", "zeros"]


def _factors(temporal_downsample: Sequence[bool]) -> list[tuple[int, int, int]]:
    return [(2 if t else 1, 2, 2) for t in temporal_downsample]


def _token_mlp(channels: int, depth: int):
    """The ``head_layer`` factory of :class:`ConvEncoder` / :class:`ConvDecoder`: None (``channels == 0``) or
    a :class:`TokenMLP` of that hidden width and depth; raises ``ValueError`` naming the bad argument."""
    if channels < 0 or (channels > 0 and depth < 1):
        raise ValueError(
            f"token_mlp_channels must be ≥ 0 (0: no token MLP) and token_mlp_depth ≥ 1, got {channels} and {depth}"
        )
    if channels == 0:
        return None
    return lambda c_in, c_out: TokenMLP(c_in, channels, c_out, depth=depth)


def _total(factors: Sequence[tuple[int, int, int]]) -> tuple[int, int, int]:
    """The whole stack's ``(r_t, s, s)``."""
    temporal, spatial = _compression(factors)
    return temporal, spatial, spatial


@BACKBONES.register
class Magvit2Encoder(ConvEncoder):
    """MAGVIT-v2 causal encoder: ``(B, in_channels, T, H, W) → (B, out_channels, T', H / s, W / s)``.

    ``T = 1 + r·k`` frames give ``T' = 1 + k`` with ``r = 2^(number of temporal downsamplers)`` (4 by default;
    valid lengths 1, 5, 9, 13, 17, ...); ``H`` and ``W`` must be divisible by ``s = 2^(levels − 1)`` (8).
    Downsampling is learned: a causal conv 3×3×3 with stride ``(2 if temporal else 1, 2, 2)`` after every
    level but the last. Takes any float dtype (pixels are expected in ``[−1, 1]``; the tokenizer checks);
    returns the pre-quantization latent, unbounded.

    Args:
        in_channels: pixel channels.
        base_channels: channels of level 0; level ``i`` has ``base_channels · channel_multipliers[i]``.
        channel_multipliers: one per level (paper, 128 px: ``(1, 2, 2, 4)``; 256 px adds a level:
            ``(1, 1, 2, 2, 4)``).
        num_res_blocks: residual blocks per level and in the middle stage (paper: 4).
        temporal_downsample: per downsampler (``len(channel_multipliers) − 1`` flags), whether it also halves
            time (paper: ``(False, True, True)``, i.e. the later levels).
        out_channels: latent dim (18 for a 2^18 LFQ vocabulary).
        num_groups: groups of every per-frame GroupNorm (must divide every level's channels).
        padding_mode: temporal padding of every causal conv, ``"replicate"`` (first frame) or ``"zeros"``.
        tubelet_shortcut: add a learned linear map of each token's ``r_t × s × s`` pixel tubelet to the latent
            (:class:`~lfq_kit.nn.TubeletEmbed`; not in the paper, off by default), or, with the token MLP, to
            the features the MLP reads. Pair it with the decoder's option; it speeds up short trainings (see
            docs/tokenizer.md).
        token_mlp_channels: 0 (the paper's layout), or the hidden width of a per-token MLP that maps the
            latent grid (then of the deepest level's width) to ``out_channels`` (:class:`~lfq_kit.nn.TokenMLP`;
            not in the paper). Gives a sign quantizer non-linear codes; pair it with the decoder's option.
        token_mlp_depth: hidden layers of that MLP (≥ 1; unused when ``token_mlp_channels`` is 0).
        activation_checkpointing: in training, recompute each residual block in backward instead of keeping its
            activations (for the large presets; same outputs and gradients, about one more forward of the blocks).
        norm_eps: added to the variance in every GroupNorm (1e-5; Open-MAGVIT2's weights need 1e-6).
        clip_wide_norm: NOT causal. GroupNorm statistics over the whole clip (``C/G × T × H × W``,
            :class:`~lfq_kit.nn.ClipGroupNorm`) instead of each frame, as Open-MAGVIT2's video tokenizer (SEED-Voken
            ``improved_video_model.py``); only to run its weights. Latent frame ``j`` then depends on every frame.

    Raises:
        ValueError: inconsistent settings (flag count, group count, a negative ``token_mlp_channels`` or a
            ``token_mlp_depth`` < 1); (forward) a shape outside the rules, naming the valid clip lengths and the
            spatial divisor.
    """

    def __init__(
        self,
        in_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers: Sequence[int] = (1, 2, 2, 4),
        num_res_blocks: int = 4,
        temporal_downsample: Sequence[bool] = (False, True, True),
        out_channels: int = 18,
        num_groups: int = 32,
        padding_mode: PaddingMode = "replicate",
        tubelet_shortcut: bool = False,
        token_mlp_channels: int = 0,
        token_mlp_depth: int = 2,
        activation_checkpointing: bool = False,
        norm_eps: float = 1e-5,
        clip_wide_norm: bool = False,
    ) -> None:
        check_levels(channel_multipliers, num_res_blocks, temporal_downsample)
        conv = partial(CausalConv3d, padding_mode=padding_mode)
        factors = _factors(temporal_downsample)
        shortcut = partial(TubeletEmbed, factors=_total(factors), padding_mode=padding_mode)
        norms = norm_layers(norm_eps, clip_wide=clip_wide_norm)
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            channel_multipliers=channel_multipliers,
            num_res_blocks=num_res_blocks,
            num_groups=num_groups,
            factors=factors,
            conv_layer=conv,
            norm_layer=norms.norm,
            downsample_layer=lambda c, f: conv(c, c, 3, stride=f),
            causal=True,
            shortcut_layer=shortcut if tubelet_shortcut else None,
            head_layer=_token_mlp(token_mlp_channels, token_mlp_depth),
            activation_checkpointing=activation_checkpointing,
        )
        self.temporal_downsample = tuple(bool(t) for t in temporal_downsample)
        self.padding_mode = padding_mode
        self.tubelet_shortcut = tubelet_shortcut
        self.token_mlp_channels = token_mlp_channels
        self.token_mlp_depth = token_mlp_depth
        self.norm_eps = norm_eps
        self.clip_wide_norm = clip_wide_norm

    @classmethod
    def from_2d(
        cls,
        encoder2d: Image2dEncoder,
        temporal_downsample: Sequence[bool] = (False, True, True),
        padding_mode: PaddingMode = "replicate",
    ) -> Magvit2Encoder:
        """A causal encoder with ``encoder2d``'s settings and weights, each 2D kernel in the last temporal slice.

        A clip that is constant in time then encodes, frame by frame, exactly like ``encoder2d`` encodes its
        frame (any ``temporal_downsample``). See :func:`~lfq_kit.nn.inflate_2d_to_3d`. The 2D model has no
        tubelet shortcut or token MLP, so neither has the result.
        """
        model = cls(
            in_channels=encoder2d.in_channels,
            base_channels=encoder2d.base_channels,
            channel_multipliers=encoder2d.channel_multipliers,
            num_res_blocks=encoder2d.num_res_blocks,
            temporal_downsample=temporal_downsample,
            out_channels=encoder2d.out_channels,
            num_groups=encoder2d.num_groups,
            padding_mode=padding_mode,
            norm_eps=encoder2d.norm_eps,
        )
        return inflate_2d_to_3d(encoder2d, model, causal=True)


@BACKBONES.register
class Magvit2Decoder(ConvDecoder):
    """MAGVIT-v2 causal decoder: ``(B, in_channels, T', H', W') → (B, out_channels, 1 + r·(T' − 1), s·H', s·W')``.

    The quantized latent is both the input and the condition of an AdaptiveGroupNorm at the start of every
    level (with the token MLP: the MLP's output is). Upsamplers are a causal conv to ``C·s_t·s_h·s_w`` channels
    then depth-to-space, dropping the first ``s_t − 1`` frames (``5 → 9 → 17``, ``1 → 1``). Output pixels are
    unbounded (no tanh).

    Args:
        in_channels: latent dim (18 for a 2^18 LFQ vocabulary).
        out_channels: pixel channels.
        base_channels, channel_multipliers, num_res_blocks, temporal_downsample, num_groups, padding_mode:
            as :class:`Magvit2Encoder`, given in encoder order (the decoder mirrors them), so one set of
            values describes a matching pair.
        adaptive_norm: the per-level AdaptiveGroupNorm (paper Table 5: "+adaptive GN"); off for ablations.
        tubelet_shortcut: add a learned linear map of each latent vector (with the token MLP: of the MLP's
            output) to its ``r_t × s × s`` pixel tubelet to the output (:class:`~lfq_kit.nn.TubeletUnembed`; not
            in the paper, off by default).
        token_mlp_channels: 0 (the paper's layout), or the hidden width of a per-token MLP from
            ``in_channels`` to the deepest level's width, applied to the latent before everything else
            (:class:`~lfq_kit.nn.TokenMLP`; not in the paper). Pair it with the encoder's option.
        token_mlp_depth: hidden layers of that MLP (≥ 1; unused when ``token_mlp_channels`` is 0).
        activation_checkpointing: as the encoder's.
        norm_eps, clip_wide_norm: as the encoder's (``clip_wide_norm`` also applies to the normalization inside the
            Open-MAGVIT2 AdaGN).
        adaptive_norm_variant: ``"magvit2"`` (:class:`~lfq_kit.nn.AdaptiveGroupNorm`), or ``"open_magvit2"``
            (:class:`~lfq_kit.nn.OpenMagvit2AdaptiveGroupNorm`: scale and shift from the mean and std of the whole
            latent, T included, so NOT causal); only to run Open-MAGVIT2's weights.
        keep_first_subframe: each temporal upsampler keeps the first depth-to-space sub-frame of latent frame 0
            instead of the last, as Open-MAGVIT2's ``Upsampler`` (:class:`~lfq_kit.nn.DepthToSpaceUpsample`); only to
            run their weights (it changes every output, single frames included; the dependencies stay causal).

    Raises:
        ValueError: inconsistent settings (as the encoder's); (forward) an input that is not
            ``(B, in_channels, T', H', W')``.
    """

    def __init__(
        self,
        in_channels: int = 18,
        out_channels: int = 3,
        base_channels: int = 128,
        channel_multipliers: Sequence[int] = (1, 2, 2, 4),
        num_res_blocks: int = 4,
        temporal_downsample: Sequence[bool] = (False, True, True),
        num_groups: int = 32,
        adaptive_norm: bool = True,
        padding_mode: PaddingMode = "replicate",
        tubelet_shortcut: bool = False,
        token_mlp_channels: int = 0,
        token_mlp_depth: int = 2,
        activation_checkpointing: bool = False,
        norm_eps: float = 1e-5,
        clip_wide_norm: bool = False,
        adaptive_norm_variant: AdaptiveNormVariant = "magvit2",
        keep_first_subframe: bool = False,
    ) -> None:
        check_levels(channel_multipliers, num_res_blocks, temporal_downsample)
        conv = partial(CausalConv3d, padding_mode=padding_mode)
        factors = _factors(temporal_downsample)
        shortcut = partial(TubeletUnembed, factors=_total(factors))
        norms = norm_layers(norm_eps, adaptive_norm_variant, clip_wide_norm)
        upsample = partial(DepthToSpaceUpsample, conv_layer=conv, keep_first_subframe=keep_first_subframe)
        super().__init__(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            channel_multipliers=channel_multipliers,
            num_res_blocks=num_res_blocks,
            num_groups=num_groups,
            factors=factors,
            conv_layer=conv,
            norm_layer=norms.norm,
            upsample_layer=upsample,
            adaptive_norm=adaptive_norm,
            causal=True,
            shortcut_layer=shortcut if tubelet_shortcut else None,
            head_layer=_token_mlp(token_mlp_channels, token_mlp_depth),
            activation_checkpointing=activation_checkpointing,
            adaptive_norm_layer=norms.adaptive,
        )
        self.temporal_downsample = tuple(bool(t) for t in temporal_downsample)
        self.padding_mode = padding_mode
        self.tubelet_shortcut = tubelet_shortcut
        self.token_mlp_channels = token_mlp_channels
        self.token_mlp_depth = token_mlp_depth
        self.norm_eps = norm_eps
        self.clip_wide_norm = clip_wide_norm
        self.adaptive_norm_variant = adaptive_norm_variant
        self.keep_first_subframe = keep_first_subframe

    @classmethod
    def from_2d(
        cls,
        decoder2d: Image2dDecoder,
        temporal_downsample: Sequence[bool] = (False, True, True),
        padding_mode: PaddingMode = "replicate",
    ) -> Magvit2Decoder:
        """A causal decoder with ``decoder2d``'s settings and weights (kernels in the last temporal slice; a
        temporal upsampler repeats the 2D kernel for each sub-frame). A latent constant in time decodes, frame
        by frame, exactly like ``decoder2d`` decodes its frame. The result has no tubelet shortcut or token MLP."""
        model = cls(
            in_channels=decoder2d.in_channels,
            out_channels=decoder2d.out_channels,
            base_channels=decoder2d.base_channels,
            channel_multipliers=decoder2d.channel_multipliers,
            num_res_blocks=decoder2d.num_res_blocks,
            temporal_downsample=temporal_downsample,
            num_groups=decoder2d.num_groups,
            adaptive_norm=decoder2d.adaptive_norm,
            padding_mode=padding_mode,
            norm_eps=decoder2d.norm_eps,
            adaptive_norm_variant=decoder2d.adaptive_norm_variant,
        )
        return inflate_2d_to_3d(decoder2d, model, causal=True)
