"""Write videos and frame grids to disk (generated samples, decompressed videos), atomically.

Each writer encodes to a temporary file beside the target and renames it into place, so an interrupted run never
leaves a partial file under the final name. :class:`VideoWriter` streams frames (a long decompressed video in
constant memory); :func:`write_video` writes one tensor.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch
from torch import Tensor

from ..io import PartialFile, write_atomic

__all__ = ["VideoWriter", "to_uint8_frames", "write_png_grid", "write_video"]


def to_uint8_frames(video: Tensor) -> np.ndarray:
    """``(3, T, H, W)`` float in ``[−1, 1]`` → ``(T, H, W, 3)`` uint8 (rounded, clamped)."""
    if video.ndim != 4 or video.shape[0] != 3:
        raise ValueError(f"expected one video (3, T, H, W), got shape {tuple(video.shape)}")
    pixels = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 3, 0).cpu().numpy()


def _muxer(path: Path) -> str:
    """FFmpeg's muxer for ``path``'s suffix, as ``av.open(path, "w")`` picks it (the partial file's name has no
    such suffix). Raises ValueError for a suffix FFmpeg does not know."""
    probe = io.BytesIO()
    probe.name = str(path)
    with av.open(probe, "w") as container:
        return container.format.name


class VideoWriter:
    """Streams frames into a video file (PyAV), under a temporary name until :meth:`close` renames it into place.

    Use it as a context manager: leaving the block normally closes and renames; an exception removes the temporary
    file, so no partial video is ever left under ``path``. Frames of any size keep that size: even sizes are coded
    as yuv420p, odd ones as yuv444p (4:2:0 needs even sizes), unless ``pix_fmt`` says otherwise.

    Args:
        path: the output file; the container follows its suffix (``.mp4``, ``.mkv``, ...).
        width, height: frame size in pixels.
        fps: frame rate, exact as a ``Fraction`` (``Fraction(30000, 1001)``) or a float (rounded to a fraction with
            denominator at most 1001).
        codec: FFmpeg encoder (``libx264``).
        crf: constant rate factor of the encoder (18: visually near lossless for H.264; 0: lossless).
        pix_fmt: pixel format; None chooses as said above.

    Raises:
        ValueError: a non-positive size or frame rate; (from :meth:`write`) frames of another size.
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float | Fraction = 8.0,
        codec: str = "libx264",
        crf: int = 18,
        pix_fmt: str | None = None,
    ) -> None:
        rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
        if width < 1 or height < 1 or rate <= 0:
            raise ValueError(f"need a positive frame size and rate, got {width} × {height} at {fps} fps")
        self.path, self.width, self.height = Path(path), int(width), int(height)
        self._file = PartialFile(self.path)
        self._container = av.open(str(self._file.partial), "w", format=_muxer(self.path))
        try:
            self._stream = self._container.add_stream(codec, rate=rate)
            self._stream.width, self._stream.height = self.width, self.height
            even = self.width % 2 == 0 and self.height % 2 == 0
            self._stream.pix_fmt = pix_fmt or ("yuv420p" if even else "yuv444p")
            self._stream.options = {"crf": str(crf)}
        except BaseException:
            self.abort()
            raise
        self.frames_written = 0

    def write(self, video: Tensor) -> None:
        """Append ``(3, T, H, W)`` pixels in ``[−1, 1]``."""
        frames = to_uint8_frames(video)
        if frames.shape[1:3] != (self.height, self.width):
            raise ValueError(
                f"frames of {frames.shape[2]} × {frames.shape[1]} written to a {self.width} × {self.height} video"
            )
        for frame in frames:
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                self._container.mux(packet)
        self.frames_written += len(frames)

    def close(self) -> Path:
        """Flush the encoder, close the file and rename it to ``path``. Returns the path."""
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._file.commit()
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (nothing is left under ``path``); safe to call twice."""
        try:
            self._container.close()
        except Exception:  # already closed, or the encoder failed: the file is discarded anyway
            pass
        self._file.discard()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(
    path: str | Path,
    video: Tensor,
    fps: float | Fraction = 8.0,
    codec: str = "libx264",
    crf: int = 18,
    pix_fmt: str | None = None,
) -> Path:
    """Encode ``(3, T, H, W)`` pixels in ``[−1, 1]`` as a video file (H.264 MP4 by default) with PyAV, atomically.

    The frame size is kept: yuv420p for even sizes, yuv444p for odd ones (see :class:`VideoWriter`). Returns the path.
    """
    frames = to_uint8_frames(video)  # checks the shape
    with VideoWriter(path, frames.shape[2], frames.shape[1], fps, codec, crf, pix_fmt) as writer:
        writer.write(video)
    return writer.path


def write_png_grid(path: str | Path, videos: Tensor, max_frames: int = 17) -> Path:
    """A PNG with one row per video ``(B, 3, T, H, W)`` in ``[−1, 1]`` and one column per frame (at most
    ``max_frames``, evenly spaced). Returns the path."""
    from PIL import Image

    if videos.ndim != 5:
        raise ValueError(f"expected videos (B, 3, T, H, W), got shape {tuple(videos.shape)}")
    t = videos.shape[2]
    keep = torch.linspace(0, t - 1, min(t, max_frames)).round().long()
    rows = [np.concatenate(list(to_uint8_frames(v[:, keep])), axis=1) for v in videos]
    image = Image.fromarray(np.concatenate(rows, axis=0))
    return write_atomic(path, lambda tmp: image.save(tmp, format="PNG"))
