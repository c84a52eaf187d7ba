"""How a video of any length and size is cut into chunks the tokenizer accepts, and padded.

Chunks are consecutive clips of ``chunk_frames`` frames (17 for MAGVIT-v2's causal 4× tokenizer: ``1 + 4k``); the
last one holds what remains, padded by repeating its last frame to the next length the tokenizer accepts (to the
full ``chunk_frames`` when the prior needs a fixed grid, as the masked LM does). Frames are padded at the bottom and
right edges to a multiple of the tokenizer's spatial compression by repeating the edge pixels. Decompression
keeps the real frames of each chunk and crops the padding off.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ChunkSpan", "default_chunk_frames", "pad_clip", "plan_chunks", "valid_length"]


class ChunkSpan(NamedTuple):
    """Chunk ``index`` covers frames ``start … start + frames − 1``, padded to ``padded_frames``."""

    index: int
    start: int
    frames: int
    padded_frames: int


def valid_length(frames: int, temporal_compression: int, causal: bool) -> int:
    """The smallest clip length ``>= frames`` the tokenizer accepts: ``1 + r·k`` (causal) or ``r·k``."""
    r = temporal_compression
    if causal:
        return 1 + r * math.ceil(max(frames - 1, 0) / r)
    return r * math.ceil(max(frames, 1) / r)


def default_chunk_frames(temporal_compression: int, causal: bool) -> int:
    """The shortest accepted length of at least 16 frames (17 for causal 4× or 2×, 16 for non-causal 4×)."""
    return valid_length(16, temporal_compression, causal)


def plan_chunks(
    num_frames: int, chunk_frames: int, temporal_compression: int, causal: bool, pad_last_to_full: bool = False
) -> list[ChunkSpan]:
    """The chunks of a ``num_frames`` video.

    Raises:
        ValueError: ``num_frames < 1``, or a ``chunk_frames`` the tokenizer does not accept (the message says which
            lengths it does).
    """
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    if valid_length(chunk_frames, temporal_compression, causal) != chunk_frames or chunk_frames < 1:
        rule = f"1 + {temporal_compression}k" if causal else f"{temporal_compression}k"
        raise ValueError(f"chunk_frames must be a length the tokenizer accepts ({rule} frames), got {chunk_frames}")
    spans = []
    for index, start in enumerate(range(0, num_frames, chunk_frames)):
        frames = min(chunk_frames, num_frames - start)
        padded = chunk_frames if pad_last_to_full else valid_length(frames, temporal_compression, causal)
        spans.append(ChunkSpan(index, start, frames, padded))
    return spans


def pad_clip(frames: Tensor, padded_frames: int, padded_height: int, padded_width: int) -> Tensor:
    """uint8 ``(T, H, W, 3)`` frames → float32 ``(3, padded_frames, padded_height, padded_width)`` in ``[−1, 1]``,
    the last frame and the bottom/right edge pixels repeated into the padding.

    Raises:
        ValueError: a padded size smaller than the clip.
    """
    t, h, w, _ = frames.shape
    if padded_frames < t or padded_height < h or padded_width < w:
        raise ValueError(f"cannot pad a {t} × {h} × {w} clip to {padded_frames} × {padded_height} × {padded_width}")
    video = frames.permute(3, 0, 1, 2).float().div_(127.5).sub_(1.0)  # (3, T, H, W)
    if padded_height > h or padded_width > w:
        video = F.pad(video, (0, padded_width - w, 0, padded_height - h), mode="replicate")
    if padded_frames > t:
        video = torch.cat([video, video[:, -1:].expand(-1, padded_frames - t, -1, -1)], dim=1)
    return video.contiguous()
