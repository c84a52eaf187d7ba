"""Which frames make a clip: frame stride, optional frame-rate resampling, the short-clip policy, and the
per-dataset-index choice of video and start frame.

A clip of ``T`` frames with step ``s`` source frames per output frame (``s = frame_stride``, times
``fps / target_fps`` when a target rate is set) starting at frame ``a`` uses the indices
``a + ⌊k·s⌋, k = 0 … T−1`` and spans ``⌊(T−1)·s⌋ + 1`` source frames.

Short-clip policy, for a video of ``n`` frames shorter than that span (a wrong-length clip is never made):

- ``"lower_stride"`` (default): use the largest integer stride below ``s`` whose span fits; if even
  stride 1 does not fit (``n < T``), loop at stride 1 (or at ``s`` when ``s < 1``).
- ``"loop"``: keep ``s`` and play the video's strided frames again from its start:
  ``n = 10, T = 8, s = 2`` gives ``0 2 4 6 8 0 2 4``.
- ``"skip"``: the video is left out of the dataset (one warning names every such video).

Every computation here is vectorized over videos (at construction) or over the ``T`` frames of a clip.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

__all__ = ["ClipSampler", "SamplingMode", "ShortClipPolicy", "clip_offsets", "clip_span"]

ShortClipPolicy = Literal["lower_stride", "loop", "skip"]
SamplingMode = Literal["random", "uniform", "constant"]

# Float steps (fps resampling) land on integers up to rounding error; ⌊k·s + ε⌋ keeps k·s = 3.0 at 3.
_EPS = 1e-6


def clip_span(frames_per_clip: int, step: np.ndarray | float) -> np.ndarray:
    """Source frames covered by a clip of ``frames_per_clip`` frames at ``step``: ``⌊(T−1)·s⌋ + 1``."""
    return np.floor((frames_per_clip - 1) * np.asarray(step, dtype=np.float64) + _EPS).astype(np.int64) + 1


def clip_offsets(frames_per_clip: int, step: float) -> np.ndarray:
    """Frame offsets ``⌊k·s⌋`` of a clip from its first frame, int64 ``(T,)``."""
    return np.floor(np.arange(frames_per_clip) * step + _EPS).astype(np.int64)


def _looped(num_frames: int, frames_per_clip: int, step: float) -> np.ndarray:
    """The video's frames at ``step`` from frame 0, repeated until ``frames_per_clip`` are taken."""
    available = clip_offsets(int(np.ceil(num_frames / step)) + 1, step)
    available = available[available < num_frames]
    return available[np.arange(frames_per_clip) % len(available)]


class ClipSampler:
    """Maps a dataset index to a video and the frame indices of one clip from it.

    Modes:
        ``"random"``: ``clips_per_video`` clips per video, each at a uniformly random start (training).
            Dataset index ``i`` is video ``i // clips_per_video``.
        ``"uniform"``: ``clips_per_video`` clips per video at evenly spaced starts, first to last possible
            start (one clip: the centered one). Deterministic (evaluation).
        ``"constant"``: ``clips_per_epoch`` random clips however many videos there are, cycling through the
            videos (index ``i`` is video ``i mod V``), for datasets of a few long videos.

    Random starts draw from torch's global generator; the datasets call the sampler under the sample's seed
    (:func:`~lfq_kit.seeding.seeded`) when indexed by a :class:`~lfq_kit.seeding.SampleKey`, as in
    training, so a start depends on (base seed, epoch, index) only, not on the worker that draws it.

    Args:
        num_frames: frame count of each video, ``(V,)``.
        fps: frame rate of each video, ``(V,)``; used only with ``target_fps``.
        frames_per_clip: ``T``.
        frame_stride: source frames between consecutive clip frames (at the source rate).
        target_fps: resample every video to this rate first (None: keep each video's rate).
        short_clip: policy for videos shorter than a clip's span; with ``"skip"`` such videos must be
            removed beforehand, see :meth:`eligible`.
        mode, clips_per_video, clips_per_epoch: see above.

    Raises:
        ValueError: a non-positive length, stride, rate or count; ``clips_per_epoch`` missing in
            ``"constant"`` mode; a video with fewer than 1 frame or (policy ``"skip"``) too few frames.
    """

    def __init__(
        self,
        num_frames: np.ndarray,
        fps: np.ndarray,
        frames_per_clip: int,
        frame_stride: int = 1,
        target_fps: float | None = None,
        short_clip: ShortClipPolicy = "lower_stride",
        mode: SamplingMode = "random",
        clips_per_video: int = 1,
        clips_per_epoch: int | None = None,
    ) -> None:
        if frames_per_clip < 1 or frame_stride < 1 or clips_per_video < 1:
            raise ValueError(
                f"frames_per_clip, frame_stride and clips_per_video must be >= 1, got "
                f"{frames_per_clip}, {frame_stride}, {clips_per_video}"
            )
        if target_fps is not None and target_fps <= 0:
            raise ValueError(f"target_fps must be positive or None, got {target_fps}")
        if mode == "constant" and (clips_per_epoch is None or clips_per_epoch < 1):
            raise ValueError(f"mode 'constant' needs clips_per_epoch >= 1, got {clips_per_epoch}")
        if short_clip not in ("lower_stride", "loop", "skip"):
            raise ValueError(f"short_clip must be 'lower_stride', 'loop' or 'skip', got {short_clip!r}")
        self.num_frames = np.asarray(num_frames, dtype=np.int64)
        if self.num_frames.size == 0 or self.num_frames.min() < 1:
            raise ValueError("ClipSampler needs at least one video, each with at least one frame")
        self.frames_per_clip = frames_per_clip
        self.mode = mode
        self.clips_per_video = clips_per_video
        self.clips_per_epoch = clips_per_epoch
        step = np.full(self.num_frames.shape, float(frame_stride))
        if target_fps is not None:
            step = step * np.asarray(fps, dtype=np.float64) / target_fps
        fits = clip_span(frames_per_clip, step) <= self.num_frames
        if short_clip == "skip" and not fits.all():
            raise ValueError(
                f"{int((~fits).sum())} video(s) are shorter than a clip and short_clip='skip'; "
                "remove them first (ClipSampler.eligible)"
            )
        if short_clip == "lower_stride":
            # Largest integer stride whose span fits: (T−1)·s + 1 ≤ n.
            fitting = (self.num_frames - 1) // max(frames_per_clip - 1, 1)
            lowered = np.minimum(np.floor(step), fitting)
            self.loop = ~fits & (lowered < 1)
            self.step = np.where(fits, step, np.where(self.loop, np.minimum(step, 1.0), lowered))
        else:
            self.loop = ~fits
            self.step = step
        self.max_start = np.where(self.loop, 0, self.num_frames - clip_span(frames_per_clip, self.step))

    @staticmethod
    def eligible(
        num_frames: np.ndarray,
        fps: np.ndarray,
        frames_per_clip: int,
        frame_stride: int = 1,
        target_fps: float | None = None,
    ) -> np.ndarray:
        """Bool ``(V,)``: which videos hold a whole clip at the requested step (the ``"skip"`` policy's test)."""
        step = np.full(np.shape(num_frames), float(frame_stride))
        if target_fps is not None:
            step = step * np.asarray(fps, dtype=np.float64) / target_fps
        return clip_span(frames_per_clip, step) <= np.asarray(num_frames)

    def __len__(self) -> int:
        if self.mode == "constant":
            return int(self.clips_per_epoch)
        return len(self.num_frames) * self.clips_per_video

    def video_of(self, index: int) -> int:
        """The video that dataset index ``index`` draws from."""
        if self.mode == "constant":
            return index % len(self.num_frames)
        return index // self.clips_per_video

    def start_of(self, index: int) -> int:
        """The first frame of the clip at ``index`` (random in modes ``"random"`` and ``"constant"``)."""
        video = self.video_of(index)
        max_start = int(self.max_start[video])
        if self.mode == "uniform":
            k = self.clips_per_video
            # Integer round-half-up of max_start · j / (k − 1): exact, no float or banker's rounding.
            return max_start // 2 if k == 1 else (2 * max_start * (index % k) + k - 1) // (2 * (k - 1))
        return int(torch.randint(max_start + 1, ()).item())

    def __call__(self, index: int) -> tuple[int, np.ndarray]:
        """``(video, frame indices)`` for dataset index ``index``; the indices are int64 ``(T,)``."""
        if not 0 <= index < len(self):
            raise IndexError(f"clip index {index} out of range for {len(self)} clips")
        video = self.video_of(index)
        n, step = int(self.num_frames[video]), float(self.step[video])
        if self.loop[video]:
            return video, _looped(n, self.frames_per_clip, step)
        return video, self.start_of(index) + clip_offsets(self.frames_per_clip, step)
