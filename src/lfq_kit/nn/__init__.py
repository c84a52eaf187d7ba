"""Layers shared by the backbones: causal conv, per-frame and adaptive GroupNorm (with Open-MAGVIT2's clip-wide
variants), depth-to-space, blur pooling, residual blocks, the tubelet shortcut, the token MLP, factorized token
embeddings and heads, and 2D → 3D weight inflation."""

from .adaptive_group_norm import (
    AdaptiveGroupNorm,
    OpenMagvit2AdaptiveGroupNorm,
    causal_frame_index,
    resize_condition,
)
from .blur_pool import BlurPool2d, BlurPool3d, binomial_filter
from .causal_conv import CausalConv3d
from .depth_to_space import DepthToSpaceUpsample, depth_to_space, space_to_depth
from .factorized_tokens import FactorizedTokens, merge_tokens, split_tokens
from .frame_group_norm import ClipGroupNorm, FrameGroupNorm
from .inflate import inflate_2d_to_3d, inflate_conv_weight
from .res_block import ResBlock, apply_norm
from .same_conv import SameConv2d, SameConv3d
from .token_mlp import TokenMLP
from .tubelet_shortcut import TubeletEmbed, TubeletUnembed

__all__ = [
    "AdaptiveGroupNorm",
    "BlurPool2d",
    "BlurPool3d",
    "CausalConv3d",
    "ClipGroupNorm",
    "DepthToSpaceUpsample",
    "FactorizedTokens",
    "FrameGroupNorm",
    "OpenMagvit2AdaptiveGroupNorm",
    "ResBlock",
    "SameConv2d",
    "SameConv3d",
    "TokenMLP",
    "TubeletEmbed",
    "TubeletUnembed",
    "apply_norm",
    "binomial_filter",
    "causal_frame_index",
    "depth_to_space",
    "inflate_2d_to_3d",
    "inflate_conv_weight",
    "merge_tokens",
    "resize_condition",
    "space_to_depth",
    "split_tokens",
]
