"""The generic map-style clip dataset over manifest entries, and its collate function.

Every video dataset (UCF-101, sample clips, and later Kinetics, HMDB-51, SSv2) is an index builder that
lists :class:`~lfq_kit.data.manifest.VideoItem` s plus this dataset over the resulting manifest entries.

Bad-file policy (docs/data.md):

- Files the manifest already knows to be unreadable are left out when the dataset is built, with one
  :class:`~lfq_kit.data.skips.SkippedVideoWarning` naming each file and reason (``on_error="skip"``), or
  a :class:`~lfq_kit.data.decode.VideoDecodeError` naming the first of them (``on_error="raise"``).
- A clip that fails to decode later (a corrupt frame the probe did not reach) is replaced by another clip
  by :class:`~lfq_kit.data.retry.RetryingReader`: a random one in training (drawn under the sample's seed), the
  next index in evaluation;
  after ``max_retries`` consecutive failures a ``RuntimeError`` says the data is broken beyond skipping. In
  training, a worker does not decode a file that failed in it again. Each replaced clip is reported in the
  sample's ``skipped`` / ``skip_reasons`` lists, which cross worker processes inside the batch (see
  :mod:`lfq_kit.data.skips`). With ``on_error="raise"`` the ``VideoDecodeError`` propagates.

Defaults: training skips, evaluation raises.

With ``cache_frames=True`` each video is decoded once per process into a
:class:`~lfq_kit.data.frame_cache.FrameCache` (short side resized to ``resolution``) and clips are cut from
memory; see :mod:`lfq_kit.data.frame_cache` for how that differs from decoding each clip.

Indexing with a :class:`~lfq_kit.seeding.SampleKey` ``(index, seed)`` (what the training loaders'
:class:`~lfq_kit.data.epoch_sampler.EpochSampler` yields) makes the clip's start, crop, flip and replacements a
function of the key alone; see :mod:`lfq_kit.seeding`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..seeding import SampleKey, seeded, split_key
from .decode import VideoDecodeError, read_frames
from .frame_cache import FrameCache
from .manifest import VideoEntry
from .retry import Attempt, OnError, RetryingReader
from .sampling import ClipSampler, SamplingMode, ShortClipPolicy
from .skips import SkippedVideoWarning
from .transforms import ClipTransform

__all__ = ["OnError", "VideoClipDataset", "collate_clips"]


def collate_clips(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples of :class:`VideoClipDataset` into a batch.

    Returns:
        ``video`` float32 ``(B, 3, T, H, W)`` in [−1, 1]; ``label`` int64 ``(B,)``; ``index`` int64 ``(B,)``
        (dataset index of each clip); ``frame_indices`` int64 ``(B, T)`` (source frames of each clip);
        ``video_id`` list of B str (path relative to the dataset root); ``skipped`` and ``skip_reasons``:
        lists of the files (absolute paths) and reasons of clips skipped while producing this batch,
        usually empty.
    """
    return {
        "video": torch.stack([s["video"] for s in samples]),
        "label": torch.tensor([s["label"] for s in samples], dtype=torch.long),
        "index": torch.tensor([s["index"] for s in samples], dtype=torch.long),
        "frame_indices": torch.stack([s["frame_indices"] for s in samples]),
        "video_id": [s["video_id"] for s in samples],
        "skipped": [p for s in samples for p in s["skipped"]],
        "skip_reasons": [r for s in samples for r in s["skip_reasons"]],
    }


def _bad_files_message(bad: Sequence[VideoEntry], what: str) -> str:
    lines = [f"left out {len(bad)} {what}:"] + [f"  {e.path}: {e.reason}" for e in bad]
    return "\n".join(lines)


class VideoClipDataset(Dataset):
    """Clips of ``frames_per_clip`` frames from manifest entries, resized and cropped to a square.

    Each item is a dict: ``video`` float32 ``(3, T, resolution, resolution)`` in [−1, 1], ``label`` int,
    ``index`` int, ``frame_indices`` int64 ``(T,)``, ``video_id`` str, ``skipped`` and ``skip_reasons``
    (lists of str). Batch with :func:`collate_clips`.

    Args:
        entries: manifest entries (unreadable ones are handled by ``on_error``, see the module docstring).
        frames_per_clip: ``T``.
        frame_stride: source frames between consecutive clip frames.
        resolution: output height and width in pixels.
        sampling: ``"random"`` (training), ``"uniform"`` (evaluation) or ``"constant"``; see
            :class:`~lfq_kit.data.sampling.ClipSampler`.
        clips_per_video: clips per video in modes ``"random"`` and ``"uniform"``.
        clips_per_epoch: dataset length in mode ``"constant"``.
        target_fps: resample every video to this frame rate (None: each video's own rate).
        short_clip: policy for videos shorter than a clip, see :mod:`lfq_kit.data.sampling`.
        train: random crops and flips, random replacement of failed clips.
        on_error: ``"skip"`` or ``"raise"`` for unreadable files; None: skip in training, raise otherwise.
        max_retries: consecutive failed clips tolerated for one item before giving up.
        flip_p: horizontal flip probability in training.
        decode_threads: decoder threads per clip read (1 suits DataLoader workers; 0: FFmpeg's choice).
        cache_frames: decode each video once per process and keep its frames in memory, resized to a short
            side of ``resolution`` (see :mod:`lfq_kit.data.frame_cache`); for small datasets.
        crop_size: in training, a random ``crop_size``-pixel square window of each ``resolution``-sized clip
            (see :class:`~lfq_kit.data.transforms.ClipTransform`); items are then ``(3, T, crop_size,
            crop_size)``.
        frame_window: ``(low, high)`` fractions, ``0 <= low < high <= 1``: clips use only the frames
            ``[floor(low · n), floor(high · n))`` of each ``n``-frame video (None: all). Disjoint windows never
            share a frame: how :class:`~lfq_kit.data.samples.SampleClipsDataModule` holds out the end of each
            training video.

    Attributes:
        frame_cache: the process's :class:`~lfq_kit.data.frame_cache.FrameCache`, None without
            ``cache_frames``.
        retry: the :class:`~lfq_kit.data.retry.RetryingReader` replacing clips that fail to decode.

    Raises:
        VideoDecodeError: ``on_error="raise"`` and an entry is unreadable.
        ValueError: no usable video is left, invalid clip arguments, ``on_error`` or ``max_retries``.
    """

    def __init__(
        self,
        entries: Sequence[VideoEntry],
        frames_per_clip: int = 17,
        frame_stride: int = 1,
        resolution: int = 128,
        sampling: SamplingMode = "random",
        clips_per_video: int = 1,
        clips_per_epoch: int | None = None,
        target_fps: float | None = None,
        short_clip: ShortClipPolicy = "lower_stride",
        train: bool = True,
        on_error: OnError | None = None,
        max_retries: int = 10,
        flip_p: float = 0.5,
        decode_threads: int = 1,
        cache_frames: bool = False,
        crop_size: int | None = None,
        frame_window: tuple[float, float] | None = None,
    ) -> None:
        if frame_window is not None and not 0.0 <= frame_window[0] < frame_window[1] <= 1.0:
            raise ValueError(f"frame_window must be (low, high) with 0 <= low < high <= 1, got {frame_window}")
        self.train = train
        # failures are remembered by video, so a worker never decodes a failed file again
        self.retry = RetryingReader(
            train, on_error or ("skip" if train else "raise"), max_retries, noun="clips", files="videos"
        )
        self.on_error: OnError = self.retry.on_error
        self.max_retries = max_retries
        self.decode_threads = decode_threads
        bad = [e for e in entries if not e.ok]
        if bad and self.on_error == "raise":
            more = f" (and {len(bad) - 1} more unreadable file(s))" if len(bad) > 1 else ""
            raise VideoDecodeError(bad[0].path, bad[0].reason + more)
        if bad:
            warnings.warn(_bad_files_message(bad, "unreadable video(s)"), SkippedVideoWarning, stacklevel=2)
        self.excluded = {e.path: e.reason for e in bad}
        good = [e for e in entries if e.ok]
        if not good:
            raise ValueError(f"no readable video among the {len(entries)} listed")
        num_frames = np.array([e.info.num_frames for e in good], dtype=np.int64)
        low, high = frame_window or (0.0, 1.0)
        # integer frame bounds of each video's window (exact at the shared boundary of two windows)
        self.first_frame = np.floor(num_frames * low + 1e-9).astype(np.int64)
        num_frames = np.floor(num_frames * high + 1e-9).astype(np.int64) - self.first_frame
        if num_frames.min() < 1:
            raise ValueError(f"frame_window {frame_window} leaves a video without frames")
        fps = np.array([e.info.fps for e in good], dtype=np.float64)
        if short_clip == "skip":
            keep = ClipSampler.eligible(num_frames, fps, frames_per_clip, frame_stride, target_fps)
            if not keep.all():
                short = [e for e, k in zip(good, keep) if not k]
                warnings.warn(
                    _bad_files_message(
                        short, f"video(s) shorter than a {frames_per_clip}-frame clip (short_clip='skip')"
                    ),
                    stacklevel=2,
                )
                good, num_frames, fps = [e for e, k in zip(good, keep) if k], num_frames[keep], fps[keep]
                self.first_frame = self.first_frame[keep]
                if not good:
                    raise ValueError(f"every video is shorter than a {frames_per_clip}-frame clip")
        self.entries = good
        self.sampler = ClipSampler(
            num_frames,
            fps,
            frames_per_clip,
            frame_stride,
            target_fps,
            short_clip,
            sampling,
            clips_per_video,
            clips_per_epoch,
        )
        self.transform = ClipTransform(resolution, train=train, flip_p=flip_p, crop_size=crop_size)
        self.frame_cache = FrameCache(resolution, decode_threads) if cache_frames else None

    def __len__(self) -> int:
        return len(self.sampler)

    def clip_frames(self, index: int) -> tuple[int, np.ndarray]:
        """``(video, source frame indices (T,) int64)`` of the clip at ``index`` (random starts draw from torch's
        global generator), within the video's ``frame_window``."""
        video, frames = self.sampler(index)
        return video, frames + self.first_frame[video]

    def _attempt(self, index: int) -> Attempt:
        video, frames = self.clip_frames(index)
        entry = self.entries[video]

        def read() -> dict[str, Any]:
            if self.frame_cache is not None:
                clip = self.frame_cache.clip(entry, frames)
            else:
                clip = read_frames(entry.path, frames, entry.info.start_pts, self.decode_threads)
            return {
                "video": self.transform(clip),
                "label": entry.label,
                "index": index,
                "frame_indices": torch.from_numpy(frames),
                "video_id": entry.video_id,
            }

        return Attempt(video, entry.path, read)

    def __getitem__(self, key: int | SampleKey) -> dict[str, Any]:
        """The item of an ``int`` index (random choices from torch's global generator) or of a
        :class:`~lfq_kit.seeding.SampleKey` (every random choice, replacements of failed clips included,
        drawn under the key's seed: the same key gives the same clip in any process).

        Raises:
            IndexError: the index is outside ``[0, len)``.
            TypeError: ``key`` is neither an int nor a ``SampleKey``.
        """
        index, seed = split_key(key)
        if not 0 <= index < len(self):
            raise IndexError(f"clip index {index} out of range for {len(self)} clips")
        with seeded(seed):
            return self.retry(index, len(self), self._attempt)
