"""Compress a video into an ``.lfq`` file: chunks → frozen tokenizer → token prior → container.

Chunks are read, tokenized and coded a batch at a time, so memory stays bounded whatever the video's length. The
file is written under a temporary name beside the output and renamed when complete: an error or an
interrupt leaves no partial output.
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from ..io import PartialFile
from ..models.frozen_tokenizer import FrozenTokenizer
from .container import CHUNK_OVERHEAD_BYTES, ChunkRecord, StreamHeader, token_crc, write_chunk, write_header
from .layout import ChunkSpan, default_chunk_frames, pad_clip, plan_chunks
from .packed import PackedPrior
from .prior import TokenPrior
from .source import FileSource, FrameSource

__all__ = ["CompressReport", "batches", "compress_video"]


class CompressReport(NamedTuple):
    """What :func:`compress_video` wrote.

    Attributes:
        path: the ``.lfq`` file.
        num_frames, height, width: the original video's size.
        num_chunks: chunks in the file.
        file_bytes: size of the file; ``header_bytes`` + ``chunk_overhead_bytes`` + ``payload_bytes``.
        num_tokens: tokens coded (over every chunk, padding included).
        tokenizer_seconds: time spent in the tokenizer's encoder; ``coding_seconds``: in the prior (entropy
            coding, the masked LM's forward passes included); ``read_seconds``: decoding and padding the input.
        ideal_bits: ``−Σ log2 p`` of the tokens under the prior (with ``measure_ideal``), else None.
        tokens: each chunk's ids ``(T', H', W')`` int64 (with ``keep_tokens``), else None.
    """

    path: Path
    num_frames: int
    height: int
    width: int
    num_chunks: int
    file_bytes: int
    header_bytes: int
    chunk_overhead_bytes: int
    payload_bytes: int
    num_tokens: int
    tokenizer_seconds: float
    coding_seconds: float
    read_seconds: float
    ideal_bits: float | None = None
    tokens: list[Tensor] | None = None

    @property
    def bpp(self) -> float:
        """Bits per pixel of the original video: ``8 · file_bytes / (frames · height · width)``."""
        return 8 * self.file_bytes / (self.num_frames * self.height * self.width)


def batches(spans: list[ChunkSpan], batch_size: int) -> list[list[ChunkSpan]]:
    """Consecutive chunks in batches of at most ``batch_size`` that share a padded length (one token grid)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out: list[list[ChunkSpan]] = []
    for span in spans:
        if out and len(out[-1]) < batch_size and out[-1][-1].padded_frames == span.padded_frames:
            out[-1].append(span)
        else:
            out.append([span])
    return out


def _check_prior(tokenizer: FrozenTokenizer, prior: TokenPrior) -> None:
    if prior.codebook_size != tokenizer.codebook_size:
        raise ValueError(
            f"the {prior.kind} prior codes a vocabulary of {prior.codebook_size} ids, the tokenizer "
            f"{tokenizer.path!r} has {tokenizer.codebook_size}"
        )
    theirs = getattr(prior, "tokenizer_hash", None)
    if theirs is not None and theirs != tokenizer.hash:
        raise ValueError(
            f"the {prior.kind} prior {prior.hint or ''} belongs to tokenizer {theirs[:12]}, but "
            f"{tokenizer.path!r} has hash {tokenizer.hash[:12]}"
        )


def _chunk_frames(tokenizer: FrozenTokenizer, prior: TokenPrior, chunk_frames: int | None) -> int:
    required = prior.required_chunk_frames()
    if required is not None and chunk_frames is not None and chunk_frames != required:
        raise ValueError(
            f"the {prior.kind} prior was trained on clips of {required} frames; chunk_frames {chunk_frames} differs"
        )
    return required or chunk_frames or default_chunk_frames(tokenizer.temporal_compression, tokenizer.causal)


@torch.no_grad()
def compress_video(
    source: FrameSource | str | os.PathLike,
    output: str | os.PathLike,
    tokenizer: FrozenTokenizer,
    prior: TokenPrior | None = None,
    chunk_frames: int | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = False,
    keep_tokens: bool = False,
    measure_ideal: bool = False,
) -> CompressReport:
    """Compress ``source`` (a :class:`FrameSource` or a video path, ``sample:NAME`` for a bundled clip) to ``output``.

    Args:
        source: the video; audio is not carried.
        output: the ``.lfq`` file to write (replaced atomically when complete).
        tokenizer: the frozen tokenizer whose tokens are stored.
        prior: how tokens are coded; None is :class:`PackedPrior` (``log2 K`` bits per token).
        chunk_frames: frames per chunk (a length the tokenizer accepts); None: the prior's clip length, else 17
            (``1 + 4k`` for MAGVIT-v2's causal tokenizer).
        batch_size: chunks tokenized and coded together (memory ∝ ``batch_size · chunk_frames · H · W``); the file
            does not depend on it.
        device: where the tokenizer runs.
        progress: show a progress bar over chunks (stderr) when there are several.
        keep_tokens: return every chunk's token ids in the report.
        measure_ideal: also compute ``−Σ log2 p`` of the tokens under the prior (a second pass of the prior).

    Raises:
        ValueError: a prior of another tokenizer or vocabulary, a chunk length the tokenizer or prior does not
            accept, or a token grid the prior cannot code.
        FileNotFoundError, lfq_kit.data.VideoDecodeError: an input that cannot be read.
    """
    from tqdm.auto import tqdm

    src = source if isinstance(source, FrameSource) else FileSource(source)
    prior = prior or PackedPrior(tokenizer.codebook_size)
    _check_prior(tokenizer, prior)
    s = tokenizer.spatial_compression
    ph, pw = s * math.ceil(src.height / s), s * math.ceil(src.width / s)
    frames_per_chunk = _chunk_frames(tokenizer, prior, chunk_frames)
    fixed = prior.required_chunk_frames() is not None
    spans = plan_chunks(src.num_frames, frames_per_chunk, tokenizer.temporal_compression, tokenizer.causal, fixed)
    prior.check_grid(tokenizer.token_grid(spans[0].padded_frames, ph, pw))
    hints = {"tokenizer": os.path.abspath(tokenizer.path)}
    if prior.hint:
        hints["prior"] = os.path.abspath(prior.hint)
    header = StreamHeader(
        tokenizer.hash,
        prior.kind,
        prior.identity,
        prior.params,
        tokenizer.codebook_size,
        src.num_frames,
        src.fps,
        src.height,
        src.width,
        ph,
        pw,
        frames_per_chunk,
        len(spans),
        hints,
    )
    target = PartialFile(output)
    times = {"read": 0.0, "tokenizer": 0.0, "coding": 0.0}
    payload_bytes = num_tokens = 0
    ideal = 0.0 if measure_ideal else None
    kept: list[Tensor] = []
    bar = tqdm(
        total=len(spans),
        unit="chunk",
        desc=f"compress {src.name}",
        disable=not progress or len(spans) < 2,
        file=sys.stderr,
    )
    with target:
        with open(target.partial, "wb") as f, bar:
            write_header(f, header)
            for batch in batches(spans, batch_size):
                t0 = time.perf_counter()
                frames = src.read(batch[0].start, batch[-1].start + batch[-1].frames - batch[0].start)
                clips = [
                    pad_clip(frames[c.start - batch[0].start :][: c.frames], c.padded_frames, ph, pw) for c in batch
                ]
                video = torch.stack(clips).to(device)
                t1 = time.perf_counter()
                ids = tokenizer.encode(video).cpu()
                t2 = time.perf_counter()
                payloads = prior.encode(ids)
                if ideal is not None:
                    ideal += sum(prior.ideal_bits(ids))
                t3 = time.perf_counter()
                for span, chunk_ids, payload in zip(batch, ids, payloads):
                    grid = tuple(int(v) for v in chunk_ids.shape)
                    write_chunk(f, ChunkRecord(span.index, span.frames, grid, payload, token_crc(chunk_ids.numpy())))
                    payload_bytes += len(payload)
                    num_tokens += chunk_ids.numel()
                if keep_tokens:
                    kept += list(ids)
                times["read"] += t1 - t0
                times["tokenizer"] += t2 - t1
                times["coding"] += t3 - t2
                bar.update(len(batch))
    out = target.path
    overhead = len(spans) * CHUNK_OVERHEAD_BYTES
    return CompressReport(
        out,
        src.num_frames,
        src.height,
        src.width,
        len(spans),
        out.stat().st_size,
        header.size,
        overhead,
        payload_bytes,
        num_tokens,
        times["tokenizer"],
        times["coding"],
        times["read"],
        ideal,
        kept if keep_tokens else None,
    )
