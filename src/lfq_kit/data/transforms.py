"""Clip transforms on tensors: square crop, resize, horizontal flip, and uint8 → [−1, 1].

:class:`ClipTransform` composes them for training (random crop position, random flip) and evaluation
(center crop, no flip). Cropping the square of the short side first and then resizing equals resizing the
short side and cropping, but resizes fewer pixels and always yields exactly ``resolution × resolution``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ClipTransform", "hflip", "resize", "square_crop", "to_signed_unit"]


def square_crop(frames: Tensor, random: bool = False) -> Tensor:
    """The largest square of ``(T, H, W, C)`` frames: centered, or at a uniformly random offset along the
    long side. Returns a view ``(T, S, S, C)``, ``S = min(H, W)``."""
    h, w = frames.shape[1:3]
    side = min(h, w)
    slack = max(h, w) - side
    offset = int(torch.randint(slack + 1, ()).item()) if random else slack // 2
    if h > w:
        return frames[:, offset : offset + side]
    return frames[:, :, offset : offset + side]


def resize(frames: Tensor, size: int) -> Tensor:
    """Bilinear, antialiased resize of float ``(T, C, H, W)`` frames to ``(T, C, size, size)``.

    Antialiasing low-pass filters when downscaling, so fine texture does not alias; the filter weights are
    non-negative and sum to 1, so values stay within the input's range (up to float rounding).
    """
    if frames.shape[-2:] == (size, size):
        return frames
    return F.interpolate(frames, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def hflip(video: Tensor) -> Tensor:
    """Mirror left–right (the last dimension)."""
    return video.flip(-1)


def to_signed_unit(frames: Tensor) -> Tensor:
    """uint8 (or float in [0, 255]) → float32 in [−1, 1]: ``x / 127.5 − 1``."""
    return (frames.float() / 127.5 - 1.0).clamp_(-1.0, 1.0)


class ClipTransform:
    """Decoded frames → model input.

    Input: uint8 ``(T, H, W, 3)`` as from :func:`~lfq_kit.data.decode.read_frames`. Output: float32
    ``(3, T, resolution, resolution)`` in [−1, 1].

    Args:
        resolution: output height and width in pixels.
        train: random crop position and random flip (else center crop, no flip).
        flip_p: probability of a horizontal flip in training (0 disables it, e.g. for datasets whose
            labels say "left" or "right").
    """

    def __init__(self, resolution: int, train: bool = False, flip_p: float = 0.5) -> None:
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        self.resolution = resolution
        self.train = train
        self.flip_p = flip_p

    def __call__(self, frames: Tensor) -> Tensor:
        square = square_crop(frames, random=self.train)
        # Resize in [0, 255], then scale and clamp (the clamp also absorbs the filter's rounding).
        video = to_signed_unit(resize(square.permute(0, 3, 1, 2).float(), self.resolution))
        if self.train and self.flip_p > 0 and torch.rand(()).item() < self.flip_p:
            video = hflip(video)
        return video.permute(1, 0, 2, 3).contiguous()
