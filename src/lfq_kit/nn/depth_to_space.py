"""Depth-to-space upsampling, MAGVIT-v2 (arXiv 2310.05737) Sec. 3.2: a conv to ``C·s_t·s_h·s_w`` channels,
then channels are rearranged into time and space.

Channel layout. Videos use ``(s_t, C, s_h, s_w)`` (time outermost), images ``(C, s_h, s_w)`` (that of
``F.pixel_shuffle``). Each temporal sub-frame thus owns a contiguous block laid out exactly like the 2D
case, which makes inflating a 2D upsampler a copy of its kernel into every block.

Causal trimming. Depth-to-space by ``s_t`` turns ``T`` frames into ``s_t·T``; the upsampler drops the first
``s_t − 1`` so that ``T → 1 + s_t·(T − 1)`` (``5 → 9 → 17``, ``1 → 1``), the inverse of the causal encoder's
``1 + s_t·k → 1 + k``. Input frame ``j`` then produces output frames ``s_t·(j − 1) + 1 … s_t·j``.
Open-MAGVIT2's video decoder keeps the first sub-frame of input frame 0 instead of the last
(``keep_first_subframe``); the frame counts and the causal dependencies are the same, the values differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from .causal_conv import CausalConv3d

__all__ = ["DepthToSpaceUpsample", "depth_to_space", "space_to_depth"]


def _check(x: Tensor, factors: Sequence[int], depth: bool) -> None:
    if x.ndim not in (4, 5) or len(factors) != x.ndim - 2:
        raise ValueError(
            f"factors {tuple(factors)} do not fit an input of shape {tuple(x.shape)} (4-D/5-D, one factor per axis)"
        )
    n = math.prod(factors)
    if depth and x.shape[1] % n:
        raise ValueError(f"depth_to_space by {tuple(factors)} needs channels divisible by {n}, got {x.shape[1]}")
    if not depth and any(size % f for size, f in zip(x.shape[2:], factors)):
        raise ValueError(f"space_to_depth by {tuple(factors)} needs sizes divisible by it, got {tuple(x.shape[2:])}")


def depth_to_space(x: Tensor, factors: Sequence[int]) -> Tensor:
    """``(B, C·Π s, *S) → (B, C, *(S·s))``; ``factors = (s_t, s_h, s_w)`` for videos, ``(s_h, s_w)`` for images.

    Pure rearrangement (no frame is dropped). Raises ``ValueError`` on a rank/factor or channel mismatch.
    """
    _check(x, factors, depth=True)
    if x.ndim == 4:
        sh, sw = factors
        return rearrange(x, "b (c sh sw) h w -> b c (h sh) (w sw)", sh=sh, sw=sw)
    st, sh, sw = factors
    return rearrange(x, "b (st c sh sw) t h w -> b c (t st) (h sh) (w sw)", st=st, sh=sh, sw=sw)


def space_to_depth(x: Tensor, factors: Sequence[int]) -> Tensor:
    """Inverse of :func:`depth_to_space`: ``(B, C, *(S·s)) → (B, C·Π s, *S)``.

    Raises ``ValueError`` unless every size is divisible by its factor.
    """
    _check(x, factors, depth=False)
    if x.ndim == 4:
        sh, sw = factors
        return rearrange(x, "b c (h sh) (w sw) -> b (c sh sw) h w", sh=sh, sw=sw)
    st, sh, sw = factors
    return rearrange(x, "b c (t st) (h sh) (w sw) -> b (st c sh sw) t h w", st=st, sh=sh, sw=sw)


class DepthToSpaceUpsample(nn.Module):
    """Conv to ``C_out·Π s`` channels, depth-to-space, and (videos) drop the first ``s_t − 1`` frames.

    Shapes: ``(B, C, T, H, W) → (B, C_out, 1 + s_t·(T − 1), s_h·H, s_w·W)`` with ``factors = (s_t, s_h, s_w)``
    and a causal conv (default); images ``(B, C, H, W) → (B, C_out, s_h·H, s_w·W)`` with
    ``factors = (s_h, s_w)`` and ``conv_layer=SameConv2d``. Causal: output frame ``t`` reads input frames
    ``≤ ceil(t / s_t)`` only.

    Args:
        channels: input channels ``C``.
        factors: ``(s_t, s_h, s_w)`` or ``(s_h, s_w)``.
        out_channels: ``C_out`` (default ``C``).
        kernel_size: of the conv.
        conv_layer: class called as ``conv_layer(in, out, kernel_size)``: :class:`CausalConv3d` (default) or
            :class:`~lfq_kit.nn.SameConv2d`.
        drop_leading_frames: drop the first ``s_t − 1`` frames (the causal rule above); turn off only for
            non-causal uses, where ``T → s_t·T``.
        keep_first_subframe: of input frame 0's ``s_t`` sub-frames keep the first and drop the others (frames
            ``1 … s_t − 1``), as Open-MAGVIT2's video ``Upsampler`` does (TencentARC/SEED-Voken
            ``src/Open_MAGVIT2/modules/diffusionmodules/improved_video_model.py``), instead of keeping the last.
            Only to run their weights; same shapes and dependencies, different values (even for one frame).

    Raises:
        ValueError: a factor below 1; an input whose rank does not match ``factors``.
    """

    def __init__(
        self,
        channels: int,
        factors: Sequence[int] = (2, 2, 2),
        out_channels: int | None = None,
        kernel_size: int = 3,
        conv_layer: Callable[..., nn.Module] = CausalConv3d,
        drop_leading_frames: bool = True,
        keep_first_subframe: bool = False,
    ) -> None:
        super().__init__()
        self.factors = tuple(int(f) for f in factors)
        if len(self.factors) not in (2, 3) or min(self.factors) < 1:
            raise ValueError(f"factors must be (s_t, s_h, s_w) or (s_h, s_w), each ≥ 1; got {tuple(factors)}")
        self.out_channels = out_channels or channels
        self.drop_leading_frames = drop_leading_frames
        self.keep_first_subframe = keep_first_subframe
        self.conv = conv_layer(channels, self.out_channels * math.prod(self.factors), kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != len(self.factors) + 2:
            raise ValueError(
                f"DepthToSpaceUpsample{self.factors} expects a {len(self.factors) + 2}-D input, got {tuple(x.shape)}"
            )
        y = depth_to_space(self.conv(x), self.factors)
        st = self.factors[0]
        if y.ndim == 5 and self.drop_leading_frames and st > 1:
            y = torch.cat([y[:, :, :1], y[:, :, st:]], dim=2) if self.keep_first_subframe else y[:, :, st - 1 :]
        return y

    def extra_repr(self) -> str:
        first = ", keep_first_subframe=True" if self.keep_first_subframe else ""
        return f"factors={self.factors}, drop_leading_frames={self.drop_leading_frames}{first}"
