"""Codec baselines through PyAV: H.264 (libx264), HEVC (libx265) and AV1 (SVT-AV1, decoded by dav1d), at a
given crf, on the same uint8 frames lfq-kit compresses.

Frames are padded (edge pixels) to what the encoder's yuv420p input needs (even sizes, at least 64 pixels for
SVT-AV1) and the decoded frames cropped back, so distortion is measured on the original area. The encoder writes
its raw elementary stream (Annex B for H.264 / HEVC, low-overhead OBUs for AV1): no container overhead is counted.
``crf`` is set in ``stream.options`` (encoder options; container options would be ignored, PyAV #371).

The rate counted is that stream without its SEI messages (H.264 NAL type 6, HEVC 39/40): x264 writes its version
and option string there (about 650 bytes), x265 about 2.3 kB, metadata a decoder ignores that would dominate the rate
of a tiny clip. ``stream_bytes`` keeps the full size.
"""

from __future__ import annotations

import io
import math
import re
from fractions import Fraction
from typing import NamedTuple

import av
import numpy as np
import torch
from torch import Tensor

__all__ = ["CODECS", "CodecResult", "encode_with_codec"]


class _Codec(NamedTuple):
    encoder: str
    raw_format: str
    options: dict[str, str]
    min_size: int
    sei_types: tuple[int, ...]


#: The baselines by name: PyAV encoder, raw stream format, quiet options, smallest frame side, SEI NAL types.
CODECS: dict[str, _Codec] = {
    "h264": _Codec("libx264", "h264", {"preset": "medium"}, 2, (6,)),
    # libx265 here gives streams that differ by about 1 % from run to run, even single-threaded (pools=none)
    "hevc": _Codec("libx265", "hevc", {"preset": "medium", "x265-params": "log-level=error"}, 2, (39, 40)),
    "av1": _Codec("libsvtav1", "obu", {"preset": "8", "svtav1-params": "log-level=0"}, 64, ()),
}

_START_CODE = re.compile(b"\x00\x00\x01")


class CodecResult(NamedTuple):
    """One encode: ``bytes`` counted for the rate (the stream without SEI), ``stream_bytes`` (all of it), and the
    decoded frames, uint8 ``(T, H, W, 3)`` at the original size."""

    codec: str
    crf: int
    bytes: int
    stream_bytes: int
    decoded: Tensor


def _sei_bytes(data: bytes, codec: str, types: tuple[int, ...]) -> int:
    """Bytes of the SEI NAL units (with their 3-byte start codes) in an Annex B stream."""
    if not types:
        return 0
    starts = [m.end() for m in _START_CODE.finditer(data)]
    total = 0
    for i, start in enumerate(starts):
        end = starts[i + 1] - 3 if i + 1 < len(starts) else len(data)
        kind = data[start] & 0x1F if codec == "h264" else (data[start] >> 1) & 0x3F
        if kind in types:
            total += end - start + 3
    return total


def encode_with_codec(frames: Tensor, codec: str, crf: int, fps: Fraction = Fraction(25)) -> CodecResult:
    """Encode uint8 ``(T, H, W, 3)`` RGB frames with ``codec`` (``"h264"``, ``"hevc"``, ``"av1"``) at ``crf`` and
    decode them back.

    Raises:
        ValueError: an unknown codec, or frames that are not uint8 ``(T, H, W, 3)``.
        RuntimeError: the decoder returned another number of frames than were encoded.
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    spec = CODECS[codec]
    t, h, w, _ = frames.shape
    ph = max(spec.min_size, 2 * math.ceil(h / 2))
    pw = max(spec.min_size, 2 * math.ceil(w / 2))
    pixels = np.pad(frames.numpy(), ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=spec.raw_format) as container:
        stream = container.add_stream(spec.encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = pw, ph, "yuv420p"
        stream.options = {**spec.options, "crf": str(crf)}
        for frame in pixels:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    data = buffer.getvalue()
    buffer.seek(0)
    with av.open(buffer, "r", format=spec.raw_format) as container:
        decoded = [f.to_ndarray(format="rgb24")[:h, :w] for f in container.decode(video=0)]
    if len(decoded) != t:
        raise RuntimeError(f"{spec.encoder} at crf {crf}: decoded {len(decoded)} frames of the {t} encoded")
    sei = _sei_bytes(data, codec, spec.sei_types)
    return CodecResult(codec, crf, len(data) - sei, len(data), torch.from_numpy(np.stack(decoded)))
