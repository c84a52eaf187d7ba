"""GroupNorm that normalizes each frame on its own (over C, H, W), MAGVIT-v2 (arXiv 2310.05737) Sec. 3.2.

A GroupNorm over (C, T, H, W) would mix statistics of future frames into past ones and break causality.
:class:`ClipGroupNorm` does exactly that; it exists only to run Open-MAGVIT2's video weights (see its docstring).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = ["ClipGroupNorm", "FrameGroupNorm"]


class FrameGroupNorm(nn.Module):
    """Per-frame GroupNorm: ``(B, C, T, H, W)`` is folded to ``(B·T, C, H, W)``, normalized, unfolded.

    An image ``(B, C, H, W)`` is one frame (plain GroupNorm), so 2D and 3D models share this layer and its
    state dict (``weight``, ``bias`` of shape ``(C,)``). Statistics use the input dtype except where autocast
    promotes group norm to float32; the output has the dtype ``F.group_norm`` returns.

    Args:
        num_channels: ``C``.
        num_groups: groups; must divide ``num_channels``.
        eps: added to the variance.
        affine: learn a per-channel scale and shift.

    Raises:
        ValueError: ``num_groups`` does not divide ``num_channels``; an input that is not 4-D or 5-D with
            ``num_channels`` channels.
    """

    def __init__(self, num_channels: int, num_groups: int = 32, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"num_groups={num_groups} must divide num_channels={num_channels}")
        self.num_channels = num_channels
        self.num_groups = num_groups
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(B, num_channels, [T,] H, W)``."""
        if x.ndim not in (4, 5) or x.shape[1] != self.num_channels:
            raise ValueError(
                f"{type(self).__name__}({self.num_channels}) expects (B, {self.num_channels}, [T,] H, W), "
                f"got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        if x.ndim == 4:
            return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
        t = x.shape[2]
        y = F.group_norm(rearrange(x, "b c t h w -> (b t) c h w"), self.num_groups, self.weight, self.bias, self.eps)
        return rearrange(y, "(b t) c h w -> b c t h w", t=t)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, num_groups={self.num_groups}, eps={self.eps}, affine={self.affine}"


class ClipGroupNorm(FrameGroupNorm):
    """Clip-wide GroupNorm, NOT causal: statistics over ``C/G × T × H × W`` (``nn.GroupNorm`` on the 5-D tensor).

    The norm of Open-MAGVIT2's video tokenizer (TencentARC/SEED-Voken
    ``src/Open_MAGVIT2/modules/diffusionmodules/improved_video_model.py``: ``nn.GroupNorm`` applied to
    ``(B, C, T, H, W)``), so that its released weights give their outputs. Every output frame depends on every
    input frame, later ones included: a model built with it breaks MAGVIT-v2's causality (docs/pretrained.md).
    An image ``(B, C, H, W)`` or a one-frame clip is normalized exactly as by :class:`FrameGroupNorm`. Same
    arguments, state dict and errors as :class:`FrameGroupNorm`.
    """

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
