"""Clip transforms on tensors: square crop, random resized crop, resize, horizontal flip, and uint8 → [−1, 1].

:class:`ClipTransform` composes them for training (random crop position, random flip; optionally a random
resized crop instead of the square) and evaluation (center crop, no flip). Random draws come from torch's
global generator, which the datasets seed per training sample (:mod:`lfq_kit.seeding`). Cropping the square of the
short side first and then resizing is, up to sub-pixel crop offsets and the filter at the crop's edges, the
same as resizing the short side and cropping (which :mod:`lfq_kit.data.frame_cache` does), but resizes fewer
pixels and always yields exactly ``resolution × resolution``.

Decoded uint8 frames are resized in uint8 (torch's fixed-point antialiased kernel on channels-last memory,
about 5× faster than converting a 720p clip to float first); the result differs from a float resize by
rounding only (under 1/255 of the range).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ClipTransform", "hflip", "random_resized_box", "resize", "square_crop", "to_signed_unit"]

# Aspect ratios (width / height) a random resized crop may take, as in Inception-style training.
_RATIO = (3 / 4, 4 / 3)
_ATTEMPTS = 10


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


def random_resized_box(height: int, width: int, scale: tuple[float, float]) -> tuple[int, int, int, int] | None:
    """A random box ``(top, left, h, w)`` covering a uniform fraction in ``scale`` of the frame's area with a
    log-uniform aspect ratio in [3/4, 4/3], at a uniform position; None when 10 draws all fall outside the
    frame (:class:`ClipTransform` then takes the largest square at a random position)."""
    area = height * width
    for _ in range(_ATTEMPTS):
        target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(()).item())
        log_ratio = math.log(_RATIO[0]) + (math.log(_RATIO[1]) - math.log(_RATIO[0])) * torch.rand(()).item()
        w = round(math.sqrt(target * math.exp(log_ratio)))
        h = round(math.sqrt(target / math.exp(log_ratio)))
        if 0 < h <= height and 0 < w <= width:
            top = int(torch.randint(height - h + 1, ()).item())
            left = int(torch.randint(width - w + 1, ()).item())
            return top, left, h, w
    return None


def resize(frames: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinear, antialiased resize of ``(T, C, H, W)`` frames to ``(T, C, size, size)`` (or ``(T, C, *size)``
    for a ``(height, width)`` pair), float or uint8 in, the same dtype out.

    Antialiasing low-pass filters when downscaling, so fine texture does not alias; the filter weights are
    non-negative and sum to 1, so values stay within the input's range (up to float rounding). uint8 frames
    are resized in uint8 (rounded to the nearest integer), with channels-last memory, torch's fast path.
    """
    target = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(frames.shape[-2:]) == target:
        return frames
    if frames.dtype == torch.uint8:
        frames = frames.contiguous(memory_format=torch.channels_last)
    return F.interpolate(frames, size=target, mode="bilinear", antialias=True, align_corners=False)


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
        crop_scale: in training, crop a random box covering this fraction range of the frame's area
            (aspect ratio 3/4 to 4/3, see :func:`random_resized_box`) instead of the largest square, and
            resize it to a square; the same box for every frame. None: the largest square.
        crop_size: in training, then cut a random ``crop_size × crop_size`` window (the same for every
            frame) out of the ``resolution``-sized frames: patch training of a fully convolutional model at
            the scale it is evaluated at, for a fraction of the compute. None (and always in evaluation):
            the whole ``resolution × resolution`` frame.

    Raises:
        ValueError: ``resolution < 1``, ``crop_scale`` not within ``0 < low <= high <= 1``, or ``crop_size``
            not within ``1 .. resolution``.
    """

    def __init__(
        self,
        resolution: int,
        train: bool = False,
        flip_p: float = 0.5,
        crop_scale: tuple[float, float] | None = None,
        crop_size: int | None = None,
    ) -> None:
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        if crop_size is not None and not 1 <= crop_size <= resolution:
            raise ValueError(f"crop_size must be within 1 .. resolution ({resolution}), got {crop_size}")
        if crop_scale is not None and not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        self.resolution = resolution
        self.train = train
        self.flip_p = flip_p
        self.crop_scale = crop_scale
        self.crop_size = crop_size

    def __call__(self, frames: Tensor) -> Tensor:
        box = None
        if self.train and self.crop_scale is not None:
            box = random_resized_box(frames.shape[1], frames.shape[2], self.crop_scale)
        if box is not None:
            top, left, h, w = box
            crop = frames[:, top : top + h, left : left + w]
        else:
            crop = square_crop(frames, random=self.train)
        # Resize in [0, 255] (uint8 stays uint8), then scale and clamp (the clamp absorbs float rounding).
        video = to_signed_unit(resize(crop.permute(0, 3, 1, 2), self.resolution))
        if self.train and self.crop_size is not None and self.crop_size < self.resolution:
            top, left = torch.randint(self.resolution - self.crop_size + 1, (2,)).tolist()
            video = video[:, :, top : top + self.crop_size, left : left + self.crop_size]
        if self.train and self.flip_p > 0 and torch.rand(()).item() < self.flip_p:
            video = hflip(video)
        return video.permute(1, 0, 2, 3).contiguous()
