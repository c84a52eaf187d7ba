"""Inflating 2D convolution weights into 3D ones, so a video tokenizer can start from a trained image one.

MAGVIT-v2 (arXiv 2310.05737, Sec. 3.2; as Open-MAGVIT2, TencentARC/SEED-Voken): for a causal kernel the 2D kernel goes
into the LAST temporal slice (the current frame) and the other slices are zero; MAGVIT v1 put it into the
centre slice of its non-causal kernels. Either way a clip that is constant in time gives, frame by frame,
exactly the 2D model's output.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["inflate_2d_to_3d", "inflate_conv_weight"]


def inflate_conv_weight(weight: Tensor, kt: int, causal: bool = True) -> Tensor:
    """``(C_out, C_in, k_h, k_w) → (C_out, C_in, kt, k_h, k_w)``, the 2D kernel in one temporal slice, zeros elsewhere.

    Args:
        weight: a 2D conv weight (any dtype; the result keeps it).
        kt: temporal kernel size.
        causal: slice ``kt − 1`` (the current frame of a causal conv); otherwise the centre ``kt // 2``.

    Raises:
        ValueError: ``weight`` is not 4-D; ``kt < 1``; ``causal=False`` with an even ``kt`` (no centre slice).
    """
    if weight.ndim != 4:
        raise ValueError(f"expected a 2D conv weight (C_out, C_in, k_h, k_w), got shape {tuple(weight.shape)}")
    if kt < 1 or (not causal and kt % 2 == 0):
        raise ValueError(f"cannot inflate into kt={kt} ({'causal' if causal else 'centre slice needs odd kt'})")
    out = weight.new_zeros(weight.shape[0], weight.shape[1], kt, *weight.shape[2:])
    out[:, :, kt - 1 if causal else kt // 2] = weight
    return out


def _copy_conv(name: str, conv2d: nn.Conv2d, conv3d: nn.Conv3d, causal: bool) -> None:
    w2, w3 = conv2d.weight, conv3d.weight
    repeats, rest = divmod(w3.shape[0], w2.shape[0])
    if rest or w3.shape[1] != w2.shape[1] or w3.shape[3:] != w2.shape[2:] or conv3d.groups != conv2d.groups:
        raise ValueError(f"cannot inflate {name!r}: 2D weight {tuple(w2.shape)} does not fit 3D {tuple(w3.shape)}")
    if conv3d.stride[1:] != conv2d.stride or conv3d.padding[1:] != conv2d.padding:
        raise ValueError(f"cannot inflate {name!r}: spatial stride/padding differ ({conv2d} vs {conv3d})")
    # Output channels repeated r times: a depth-to-space upsampler whose (s_t, C, s_h, s_w) layout gives each
    # of the s_t = r temporal sub-frames a block laid out like the 2D (C, s_h, s_w) one.
    w3.copy_(inflate_conv_weight(w2, w3.shape[2], causal).repeat(repeats, 1, 1, 1, 1))
    if (conv2d.bias is None) != (conv3d.bias is None):
        raise ValueError(f"cannot inflate {name!r}: one conv has a bias and the other not")
    if conv3d.bias is not None:
        conv3d.bias.copy_(conv2d.bias.repeat(repeats))


@torch.no_grad()
def inflate_2d_to_3d(model2d: nn.Module, model3d: nn.Module, causal: bool = True) -> nn.Module:
    """Copy every weight of ``model2d`` into the same-named one of ``model3d`` (in place; returns ``model3d``).

    The two models must have the same module tree (names and parameter names): ``Conv2d`` pairs with ``Conv3d``
    and is inflated by :func:`inflate_conv_weight` (repeated along output channels when the 3D conv has an
    integer multiple of them, the depth-to-space case); every other parameter or persistent buffer is copied
    and must have the same shape. Designed for :class:`~lfq_kit.backbones.Image2dEncoder` →
    :class:`~lfq_kit.backbones.Magvit2Encoder` (and the decoders), whose layouts match by construction.

    Raises:
        ValueError: the module trees or parameter names differ; a shape does not fit (the message names it).
    """
    modules2d = dict(model2d.named_modules())
    modules3d = dict(model3d.named_modules())
    if modules2d.keys() != modules3d.keys():
        only2d = sorted(modules2d.keys() - modules3d.keys())[:5]
        only3d = sorted(modules3d.keys() - modules2d.keys())[:5]
        raise ValueError(f"module trees differ: only in 2D {only2d}, only in 3D {only3d}")
    for name, m3 in modules3d.items():
        m2 = modules2d[name]
        if isinstance(m3, nn.Conv3d) and isinstance(m2, nn.Conv2d):
            _copy_conv(name, m2, m3, causal)
            continue
        tensors2d = {**dict(m2.named_parameters(recurse=False)), **dict(m2.named_buffers(recurse=False))}
        tensors3d = {**dict(m3.named_parameters(recurse=False)), **dict(m3.named_buffers(recurse=False))}
        if tensors2d.keys() != tensors3d.keys():
            raise ValueError(f"parameters of {name!r} differ: {sorted(tensors2d)} vs {sorted(tensors3d)}")
        for key, t3 in tensors3d.items():
            if key in m3._non_persistent_buffers_set:
                continue
            t2 = tensors2d[key]
            if t2.shape != t3.shape:
                raise ValueError(f"cannot copy {name}.{key}: shapes {tuple(t2.shape)} and {tuple(t3.shape)} differ")
            t3.copy_(t2)
    return model3d
