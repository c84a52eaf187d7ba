"""Causal 3D convolution, MAGVIT-v2 (arXiv 2310.05737) Sec. 3.2: output frame t sees input frames ≤ t only.

Time is padded by ``k_t − 1`` frames before the clip and none after; height and width get ordinary "same"
zero padding. The first frame is thus encoded on its own, so an image is a one-frame video.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn

from .same_conv import as_tuple, same_padding

__all__ = ["CausalConv3d", "pad_causal"]


def pad_causal(x: Tensor, frames: int, mode: Literal["replicate", "zeros"] = "replicate") -> Tensor:
    """``(B, C, T, H, W) → (B, C, frames + T, H, W)``: ``frames`` copies of frame 0 (``"replicate"``) or zero
    frames before the clip, none after."""
    if not frames:
        return x
    return F.pad(x, (0, 0, 0, 0, frames, 0), mode="replicate" if mode == "replicate" else "constant")


class CausalConv3d(nn.Conv3d):
    """``nn.Conv3d`` padded causally in time and "same" in space.

    Shapes: ``(B, C_in, T, H, W) → (B, C_out, (T − 1)//s_t + 1, (H − 1)//s_h + 1, (W − 1)//s_w + 1)``, so a
    temporal stride 2 maps ``17 → 9 → 5`` and ``1 → 1``. Output frame ``j`` depends on input frames
    ``j·s_t − (k_t − 1) … j·s_t`` (never later ones). Any float dtype ``nn.Conv3d`` accepts.

    Temporal padding (``padding_mode``):

    * ``"replicate"`` (default): the ``k_t − 1`` padding frames copy frame 0. A still image then looks like
      a static clip to every kernel, so the first latent frame of an image and of a static video agree even
      after the temporal kernel slices have been trained away from zero.
    * ``"zeros"``: zero frames, as most replications do. Both are causal (they only use frame 0).

    The weight has the layout of ``nn.Conv3d`` (``(C_out, C_in, k_t, k_h, k_w)``); slice ``k_t − 1`` acts on
    the current frame, which is where :func:`~lfq_kit.nn.inflate_conv_weight` puts a 2D kernel.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: ``k`` or ``(k_t, k_h, k_w)``; ``k_h`` and ``k_w`` odd, ``k_t`` any.
        stride: ``s`` or ``(s_t, s_h, s_w)``.
        padding_mode: ``"replicate"`` or ``"zeros"``, for the temporal padding only.
        bias: add a learned bias.

    Raises:
        ValueError: an even spatial kernel size, an unknown ``padding_mode``, or an input that is not 5-D.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        padding_mode: Literal["replicate", "zeros"] = "replicate",
        bias: bool = True,
    ) -> None:
        kt, kh, kw = as_tuple(kernel_size, 3, "kernel_size")
        if padding_mode not in ("replicate", "zeros"):
            raise ValueError(f"CausalConv3d padding_mode must be 'replicate' or 'zeros', got {padding_mode!r}")
        super().__init__(
            in_channels,
            out_channels,
            (kt, kh, kw),
            stride=as_tuple(stride, 3, "stride"),
            padding=(0, *same_padding((kh, kw))),
            bias=bias,
        )
        # not `padding_mode`: nn.Conv3d owns that name (for its spatial zero padding)
        self.temporal_padding = padding_mode

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5:
            raise ValueError(f"CausalConv3d expects (B, C, T, H, W), got shape {tuple(x.shape)}")
        return super().forward(pad_causal(x, self.kernel_size[0] - 1, self.temporal_padding))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temporal_padding={self.temporal_padding!r}"
