"""Pre-activation residual block of the MAGVIT-v2 tokenizer (arXiv 2310.05737, Sec. 3.2 and appendix figure).

``x + conv(Swish(GN(conv(Swish(GN(x))))))``; the skip is a 1×1(×1) conv when the channel count changes.
Conv and norm layers are passed as classes (timm style), so the same block serves the causal 3D tokenizer,
the 2D image CNN, MAGVIT v1 and the adaptive-norm decoder.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from .causal_conv import CausalConv3d
from .frame_group_norm import FrameGroupNorm

__all__ = ["ResBlock", "apply_norm"]


def apply_norm(norm: nn.Module, x: Tensor, cond: Tensor | None) -> Tensor:
    """``norm(x, cond)`` for conditioned norms (``norm.conditioned``), else ``norm(x)``.

    Raises:
        ValueError: a conditioned norm without a condition.
    """
    if getattr(norm, "conditioned", False):
        if cond is None:
            raise ValueError(f"{type(norm).__name__} needs a condition; pass cond=")
        return norm(x, cond)
    return norm(x)


class ResBlock(nn.Module):
    """GN, Swish, conv 3, GN, Swish, conv 3, plus the (projected) input.

    Shapes: ``(B, C_in, *S) → (B, C_out, *S)``, ``S = (T, H, W)`` or ``(H, W)`` according to the conv layer.
    With the defaults (:class:`CausalConv3d`, :class:`FrameGroupNorm`) output frame ``t`` depends on input
    frames ``≤ t`` only.

    Args:
        in_channels: ``C_in``.
        out_channels: ``C_out`` (default ``C_in``); when different, the skip is ``conv_layer(C_in, C_out, 1)``.
        num_groups: groups of both norms.
        conv_layer: class called as ``conv_layer(in, out, kernel_size)``.
        norm_layer: class called as ``norm_layer(num_channels=..., num_groups=...)``: :class:`FrameGroupNorm`,
            ``nn.GroupNorm``, or ``functools.partial(AdaptiveGroupNorm, cond_channels=d)`` (a norm with
            ``conditioned = True`` receives ``cond`` in :meth:`forward`).
        act_layer: activation class (Swish = ``nn.SiLU``).

    Raises:
        ValueError: (forward) a conditioned norm and no ``cond``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        num_groups: int = 32,
        conv_layer: Callable[..., nn.Module] = CausalConv3d,
        norm_layer: Callable[..., nn.Module] = FrameGroupNorm,
        act_layer: Callable[[], nn.Module] = nn.SiLU,
    ) -> None:
        super().__init__()
        out_channels = out_channels or in_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.norm1 = norm_layer(num_channels=in_channels, num_groups=num_groups)
        self.conv1 = conv_layer(in_channels, out_channels, 3)
        self.norm2 = norm_layer(num_channels=out_channels, num_groups=num_groups)
        self.conv2 = conv_layer(out_channels, out_channels, 3)
        self.act = act_layer()
        self.skip = conv_layer(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        h = self.conv1(self.act(apply_norm(self.norm1, x, cond)))
        h = self.conv2(self.act(apply_norm(self.norm2, h, cond)))
        return self.skip(x) + h
