"""In-memory frame cache for small datasets: each video is decoded once per process and clips are cut from
memory instead of being decoded again.

A cached video holds all its frames as uint8, resized so that the **short side equals the output
resolution** (bilinear, antialiased, in uint8, as :func:`~lfq_kit.data.transforms.resize`). It is
not cropped, so training crops still move along the long side. :class:`~lfq_kit.data.transforms.ClipTransform`
then crops the ``resolution``-sided square from it (its resize is then a no-op), flips and scales as usual.

Compared with decoding each clip (:func:`~lfq_kit.data.decode.read_frames`):

- The same frames are chosen (the clip sampler is unchanged) and the crop position is uniform along the long
  side in both, so clips follow the same distribution. Pixel values differ slightly, because the order is
  resize-then-crop (crop-then-resize without the cache), crop offsets are whole pixels of the resized frame
  rather than of the source frame, and the filter at the crop's left and right edges also sees pixels beyond
  the crop. Where the offsets line up (e.g. 320×240 at resolution 120) only the edge columns differ; elsewhere
  the half-pixel shift costs a few 1/255 steps on average (tested against the uncached center clip).
- A video with any frame that fails to decode fails as a whole (without the cache only clips touching the bad
  frames fail); it is then skipped like any unreadable file.
- Memory: ``frames × resolution × long side × 3`` bytes per video (``bigbuckbunny.mp4`` at 128: 132 × 128 ×
  228 × 3 ≈ 11.6 MB), held **per process**: each DataLoader worker fills its own cache. With ``num_workers >
  0`` use ``persistent_workers=True``, or the cache is refilled every epoch by the new workers.

Each :class:`FrameCache` lives inside a dataset object, so every worker process has its own; pickling it (a
``spawn`` start method) carries the settings, not the frames.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .decode import read_video
from .manifest import VideoEntry
from .transforms import resize

__all__ = ["FrameCache", "resize_short_side"]


def resize_short_side(frame: np.ndarray | Tensor, size: int) -> Tensor:
    """Resize uint8 ``(H, W, 3)`` so that ``min(H, W) == size``, keeping the aspect ratio (the long side is
    rounded to whole pixels): uint8 ``(H', W', 3)``, bilinear with antialiasing as
    :func:`~lfq_kit.data.transforms.resize`."""
    image = torch.as_tensor(frame)
    h, w = image.shape[:2]
    scale = size / min(h, w)
    target = (size, max(size, round(w * scale))) if h <= w else (max(size, round(h * scale)), size)
    if (h, w) == target:
        return image
    return resize(image.permute(2, 0, 1)[None], target)[0].permute(1, 2, 0).contiguous()


class FrameCache:
    """Whole videos in memory, decoded on first use and resized so their short side is ``resolution``.

    Args:
        resolution: short side of the cached frames (the dataset's output resolution).
        threads: decoder threads per video decode (1: none; 0: FFmpeg's choice).

    Attributes:
        nbytes: bytes held by the cached frames in this process.
    """

    def __init__(self, resolution: int, threads: int = 1) -> None:
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        self.resolution = resolution
        self.threads = threads
        self._videos: dict[str, Tensor] = {}
        self.nbytes = 0

    def __len__(self) -> int:
        return len(self._videos)

    def __contains__(self, path: str) -> bool:
        return path in self._videos

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_videos": {}, "nbytes": 0}  # a new process fills its own cache

    def frames(self, entry: VideoEntry) -> Tensor:
        """All frames of ``entry``, uint8 ``(N, H', W', 3)`` with ``min(H', W') == resolution``.

        Raises:
            VideoDecodeError: the video cannot be decoded in full (nothing is cached then).
            ValueError: the entry is one the manifest found unreadable.
        """
        video = self._videos.get(entry.path)
        if video is None:
            if entry.info is None:
                raise ValueError(f"cannot cache {entry.path}: {entry.reason}")
            video = read_video(
                entry.path,
                entry.info.num_frames,
                entry.info.start_pts,
                self.threads,
                map_frame=lambda rgb: resize_short_side(rgb, self.resolution),
            )
            self._videos[entry.path] = video
            self.nbytes += video.numel()
        return video

    def clip(self, entry: VideoEntry, indices: np.ndarray | Tensor) -> Tensor:
        """Frames ``indices`` of ``entry`` (any order, repeats allowed): uint8 ``(T, H', W', 3)``."""
        return self.frames(entry)[torch.as_tensor(indices, dtype=torch.long)]
