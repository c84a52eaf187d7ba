"""Reading video files with PyAV: a header probe (:func:`probe_video`), frame-accurate clip reads
(:func:`read_frames`) and one-pass whole-video reads (:func:`read_video`, for the in-memory frame cache).

Frames are addressed by **index**: the ``i``-th frame in presentation order, counted from the first decoded
frame. A decoded frame's index is ``round((pts − start_pts) · time_base · fps)`` with the stream's average
frame rate, so for constant-frame-rate files an index is exactly the position in a full decode; in a
variable-frame-rate file, an index that no frame maps to shows the frame before it, as a player would.

Containers are opened and closed inside each call: nothing is held across calls or processes, so these
functions are safe in DataLoader workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import torch
from torch import Tensor

__all__ = ["VideoDecodeError", "VideoInfo", "probe_video", "read_frames", "read_video"]

# Anything PyAV or the OS raises for a file that cannot be read as video.
_DECODER_ERRORS = (av.FFmpegError, OSError, ValueError)

# A file whose decode ends at most this many frames before its header's count is accepted with the decoded
# count (edit lists and a dropped final B-frame cause such small gaps); a larger gap marks it truncated.
_END_TOLERANCE = 2


class VideoDecodeError(RuntimeError):
    """A video file could not be read: missing, empty, not a video, truncated, or a frame failed to decode.

    Attributes:
        path: the file.
        reason: what went wrong, usually the decoder's own message.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"cannot read video {self.path}: {reason}")

    def __reduce__(self):  # keep (path, reason) when pickled, e.g. out of a worker process
        return type(self), (self.path, self.reason)


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about a file's first video stream.

    Attributes:
        num_frames: frames in presentation order (exact when the end was verified, see :func:`probe_video`).
        fps: average frame rate (frames per second).
        width, height: frame size in pixels, from the first decoded frame.
        start_pts: presentation timestamp of the first frame, in the stream's time base; frame indices count
            from it (AVI files with B-frames start at 1, not 0).
        codec: FFmpeg's decoder name, e.g. ``"mpeg4"`` or ``"h264"``.
    """

    num_frames: int
    fps: float
    width: int
    height: int
    start_pts: int
    codec: str


def _frame_rate(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise ValueError("the video stream declares no frame rate")
    return Fraction(rate)


def _open_video(path: str, threads: int) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    container = av.open(path, metadata_errors="ignore")
    if not container.streams.video:
        container.close()
        raise ValueError("the file has no video stream")
    stream = container.streams.video[0]
    # Parallelism normally comes from DataLoader workers; decoder threads on top of them oversubscribe.
    stream.codec_context.thread_count = threads
    if threads != 1:
        stream.thread_type = "AUTO"
    return container, stream


def _positions(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, start_pts: int | None
) -> Iterator[tuple[int, av.VideoFrame]]:
    """Decoded frames with their frame index, from the container's current position onwards.

    ``start_pts=None`` means decoding starts at the beginning and the first frame defines index 0.
    """
    scale = stream.time_base * _frame_rate(stream)  # pts units → frames
    for frame in container.decode(stream):
        if frame.pts is None:
            raise ValueError("a decoded frame has no timestamp")
        if start_pts is None:
            start_pts = frame.pts
        yield round((frame.pts - start_pts) * scale), frame


def _index_to_pts(stream: av.video.stream.VideoStream, start_pts: int, index: int) -> int:
    return start_pts + int(index / (stream.time_base * _frame_rate(stream)))


def _last_index(
    path: str, container: av.container.InputContainer, stream: av.video.stream.VideoStream, start_pts: int, near: int
) -> int | None:
    """Index of the last decodable frame: seek to the keyframe before ``near`` and decode to the end. When
    that decodes nothing (a truncated index; MPEG-TS, whose seeks by timestamp can land past the only
    keyframe), decode the whole stream from a fresh open instead."""
    container.seek(_index_to_pts(stream, start_pts, near), stream=stream, backward=True, any_frame=False)
    last = None
    for last, _ in _positions(container, stream, start_pts):  # noqa: B007 (the last one is the answer)
        pass
    if last is None and near > 0:
        fresh, fresh_stream = _open_video(path, threads=1)
        with fresh:
            for last, _ in _positions(fresh, fresh_stream, start_pts):  # noqa: B007
                pass
    return last


def probe_video(path: str | os.PathLike, verify_end: bool = True) -> VideoInfo:
    """Frame count, rate, size and start timestamp of ``path``'s first video stream, without a full decode.

    The count comes from the container header (``stream.frames``), or, when the header has none (MPEG-TS,
    some MKV / WebM), from the duration × fps. The first frame is always decoded (it gives ``start_pts`` and
    the frame size, and proves the stream decodes at all). With ``verify_end``, the last group of pictures
    is decoded too (one seek): a file whose decoding ends more than 2 frames before its header's count is
    reported as truncated, and an estimated count is replaced by the decoded one. Where the seek decodes
    nothing (an MPEG-TS file with a single keyframe), the whole stream is decoded once to count.

    Raises:
        VideoDecodeError: the file is missing, empty, not a video, has no decodable frame, or is truncated.
    """
    path = os.fspath(path)
    try:
        if os.stat(path).st_size == 0:
            raise ValueError("empty file (0 bytes)")
        container, stream = _open_video(path, threads=1)
        with container:
            fps = _frame_rate(stream)
            count, exact = stream.frames, stream.frames > 0
            if not exact:
                if stream.duration:
                    seconds = float(stream.duration * stream.time_base)
                elif container.duration:
                    seconds = container.duration / av.time_base
                else:
                    seconds = 0.0
                count = round(seconds * fps)
            first = next(container.decode(stream), None)
            if first is None or first.pts is None:
                raise ValueError("no decodable frame with a timestamp")
            start_pts = first.pts
            if verify_end and count > 1:
                last = _last_index(path, container, stream, start_pts, near=count - 1)
                decoded = 1 if last is None else last + 1
                if exact and decoded < count - _END_TOLERANCE:
                    raise ValueError(f"truncated: the header lists {count} frames but decoding ends after {decoded}")
                count = min(count, decoded) if exact else decoded
            if count < 1:
                raise ValueError("the video stream has no frames")
            codec = stream.codec_context.name
            return VideoInfo(int(count), float(fps), first.width, first.height, int(start_pts), codec)
    except _DECODER_ERRORS as err:
        raise VideoDecodeError(path, str(err) or type(err).__name__) from err


def _collect(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    wanted: np.ndarray,
    start_pts: int | None,
) -> list[np.ndarray] | None:
    """RGB arrays for the sorted unique indices ``wanted``, decoding forward from the current position.

    Returns None when the first decoded frame lies after ``wanted[0]`` (the seek overshot) or no frame
    decodes before the end of the stream (the seek landed after the keyframe the frames need: MPEG-TS).
    """
    out: list[np.ndarray] = []
    prev: av.VideoFrame | None = None
    size: dict[str, int] = {}
    last = -1
    for index, frame in _positions(container, stream, start_pts):
        if prev is None:
            if index > wanted[0]:
                return None
            size = {"width": frame.width, "height": frame.height}  # a mid-stream size change is resized back
        # Indices no frame maps to (variable frame rate) show the previous frame.
        while len(out) < len(wanted) and wanted[len(out)] < index:
            out.append(prev.to_ndarray(format="rgb24", **size))
        if len(out) < len(wanted) and wanted[len(out)] == index:
            out.append(frame.to_ndarray(format="rgb24", **size))
        if len(out) == len(wanted):
            return out
        prev, last = frame, index
    if prev is None:
        return None
    raise ValueError(f"decoding ended after frame {last}, before requested frame {int(wanted[len(out)])}")


def read_frames(
    path: str | os.PathLike,
    indices: Sequence[int] | np.ndarray | Tensor,
    start_pts: int | None = None,
    threads: int = 1,
) -> Tensor:
    """Decode the frames at ``indices`` (any order, repeats allowed) from ``path``.

    Seeks to the keyframe at or before the first needed frame, decodes forward, keeps only the needed
    frames and stops after the last one. Without ``start_pts`` (from :func:`probe_video`) it decodes from
    the start; if a seek lands after the first needed frame (seen in AVI files with B-frames) or decodes
    nothing (MPEG-TS files whose seek lands past the keyframe it needs) it also decodes from the start, so
    results always equal a full decode at the same indices.

    Args:
        path: video file.
        indices: frame indices ≥ 0, shape ``(T,)``.
        start_pts: the stream's first presentation timestamp, :attr:`VideoInfo.start_pts`.
        threads: decoder threads (1: none; 0: FFmpeg's choice).

    Returns:
        uint8 tensor ``(T, H, W, 3)``, RGB.

    Raises:
        VideoDecodeError: the file cannot be opened, a needed frame fails to decode, or the stream ends
            before the last requested index.
        ValueError: ``indices`` empty, not 1-D, or negative.
    """
    path = os.fspath(path)
    idx = torch.as_tensor(indices).cpu().numpy().astype(np.int64)
    if idx.ndim != 1 or idx.size == 0 or idx.min() < 0:
        raise ValueError(f"frame indices must be a non-empty 1-D sequence of values >= 0, got {indices!r}")
    wanted, inverse = np.unique(idx, return_inverse=True)
    try:
        frames = None
        if start_pts is not None and wanted[0] > 0:
            container, stream = _open_video(path, threads)
            with container:
                target = _index_to_pts(stream, start_pts, int(wanted[0]))
                container.seek(target, stream=stream, backward=True, any_frame=False)
                frames = _collect(container, stream, wanted, start_pts)
        if frames is None:  # from the start, on a fresh open: seeking back to the start is as unreliable
            container, stream = _open_video(path, threads)
            with container:
                frames = _collect(container, stream, wanted, start_pts)
        if frames is None:  # from the start the first frame has index 0: nothing decoded at all
            raise ValueError("no frame decodes before the end of the stream")
    except _DECODER_ERRORS as err:
        raise VideoDecodeError(path, str(err) or type(err).__name__) from err
    return torch.from_numpy(np.stack(frames)[inverse])


def read_video(
    path: str | os.PathLike,
    num_frames: int,
    start_pts: int | None = None,
    threads: int = 1,
    map_frame: Callable[[np.ndarray], Tensor] | None = None,
) -> Tensor:
    """Decode frames ``0 … num_frames − 1`` of ``path`` in one pass from the start, mapping each as it comes.

    Frame ``i`` is the frame :func:`read_frames` returns for index ``i`` (same indexing, same variable-frame-rate
    rule, same frame size), but only one decoded frame is held at full size at a time: ``map_frame`` (e.g. a
    resize) runs on each RGB frame before it is kept, so a long high-resolution video can be held small.

    Args:
        path: video file.
        num_frames: frames to return (:attr:`VideoInfo.num_frames`); decoding stops after the last one.
        start_pts: the stream's first presentation timestamp (None: the first decoded frame's).
        threads: decoder threads (1: none; 0: FFmpeg's choice).
        map_frame: uint8 ``(H, W, 3)`` RGB array → tensor, applied once per output frame (None: as is).

    Returns:
        ``map_frame``'s outputs stacked on a new first dimension: uint8 ``(num_frames, H, W, 3)`` by default.

    Raises:
        VideoDecodeError: the file cannot be opened, a frame fails to decode, or the stream ends before
            frame ``num_frames − 1``.
        ValueError: ``num_frames < 1``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    path = os.fspath(path)
    convert = map_frame or torch.from_numpy
    out: list[Tensor] = []
    try:
        container, stream = _open_video(path, threads)
        with container:
            size: dict[str, int] = {}
            prev: av.VideoFrame | None = None
            prev_mapped: Tensor | None = None  # prev converted, when a gap needed it
            last = -1
            for index, frame in _positions(container, stream, start_pts):
                if prev is None:
                    if index > 0:
                        raise ValueError(f"the first decoded frame has index {index}, not 0")
                    size = {"width": frame.width, "height": frame.height}
                # Indices no frame maps to (variable frame rate) show the previous frame, as in read_frames.
                while len(out) < min(index, num_frames):
                    if prev_mapped is None:
                        prev_mapped = convert(prev.to_ndarray(format="rgb24", **size))
                    out.append(prev_mapped)
                if len(out) == index < num_frames:
                    out.append(convert(frame.to_ndarray(format="rgb24", **size)))
                    prev_mapped = out[-1]
                else:
                    prev_mapped = None
                if len(out) == num_frames:
                    return torch.stack(out)
                prev, last = frame, index
            raise ValueError(f"decoding ended after frame {last}, before frame {num_frames - 1}")
    except _DECODER_ERRORS as err:
        raise VideoDecodeError(path, str(err) or type(err).__name__) from err
