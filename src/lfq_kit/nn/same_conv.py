"""Convolutions with "same" zero padding: :class:`SameConv2d` and the non-causal :class:`SameConv3d`.

The image CNN, the MAGVIT v1 3D CNN and the discriminators use them; the causal tokenizer uses
:class:`~lfq_kit.nn.CausalConv3d` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

__all__ = ["SameConv2d", "SameConv3d", "as_tuple"]


def as_tuple(value: int | Sequence[int], n: int, what: str = "value") -> tuple[int, ...]:
    """``3 → (3, 3, 3)``; a sequence must already have ``n`` entries.

    Raises:
        ValueError: a sequence whose length is not ``n``.
    """
    if isinstance(value, int):
        return (value,) * n
    out = tuple(int(v) for v in value)
    if len(out) != n:
        raise ValueError(f"{what} needs {n} entries, got {value!r}")
    return out


def same_padding(kernel_size: tuple[int, ...]) -> tuple[int, ...]:
    """``k // 2`` per axis for odd kernels; stride ``s`` then gives ``(n − 1) // s + 1`` outputs.

    Raises:
        ValueError: an even kernel size (it has no centre, so "same" padding would shift the output).
    """
    if any(k % 2 == 0 for k in kernel_size):
        raise ValueError(f"'same' padding needs odd kernel sizes, got {kernel_size}")
    return tuple(k // 2 for k in kernel_size)


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` zero-padded by ``k // 2``: ``(B, C_in, H, W) → (B, C_out, (H − 1)//s + 1, (W − 1)//s + 1)``.

    The spatial half of :class:`~lfq_kit.nn.CausalConv3d` (same padding, same output grid), so a
    2D model built from it inflates into a causal 3D one by a pure weight copy.

    Raises:
        ValueError: an even kernel size.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        bias: bool = True,
    ) -> None:
        k = as_tuple(kernel_size, 2, "kernel_size")
        s = as_tuple(stride, 2, "stride")
        super().__init__(in_channels, out_channels, k, stride=s, padding=same_padding(k), bias=bias)


class SameConv3d(nn.Conv3d):
    """Non-causal ``nn.Conv3d`` zero-padded by ``k // 2`` on every axis, time included.

    ``(B, C_in, T, H, W) → (B, C_out, (T − 1)//s_t + 1, (H − 1)//s_h + 1, (W − 1)//s_w + 1)``. Output frame
    ``t`` sees input frames ``t − k_t//2 … t + k_t//2``: MAGVIT v1 and the discriminators only.

    Raises:
        ValueError: an even kernel size.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int] = 3,
        stride: int | Sequence[int] = 1,
        bias: bool = True,
    ) -> None:
        k = as_tuple(kernel_size, 3, "kernel_size")
        s = as_tuple(stride, 3, "stride")
        super().__init__(in_channels, out_channels, k, stride=s, padding=same_padding(k), bias=bias)
