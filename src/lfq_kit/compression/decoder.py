"""Decompress an ``.lfq`` file: container → token prior → token ids → frozen tokenizer → frames (→ an MP4).

The tokenizer and the prior are found from the paths the header suggests unless given, and must have the hashes
the header names. Chunks are decoded a batch at a time (any batch size: the tokens are the same, docs/compression.md),
each checked against its token checksum; the video is streamed to a temporary file and renamed when complete
(docs/compression.md).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from ..models.frozen_tokenizer import FrozenTokenizer
from .container import ChunkRecord, CompressedFileError, StreamHeader, read_chunks, read_header, token_crc
from .factorized import FactorizedPrior, sidecar_path
from .packed import PackedPrior
from .prior import TokenPrior

__all__ = [
    "DecodedChunk",
    "DecompressReport",
    "decode_tokens",
    "decompress_video",
    "load_prior",
    "load_tokenizer",
    "read_file_header",
]


class DecodedChunk(NamedTuple):
    """Chunk ``index``: its ``frames`` real frames and its token ids ``(T', H', W')`` int64."""

    index: int
    frames: int
    ids: Tensor


class DecompressReport(NamedTuple):
    """What :func:`decompress_video` decoded: the original size and rate, the output path (or None), the time in
    the prior (``coding_seconds``) and in the tokenizer's decoder, and the frames themselves (with ``keep_video``:
    uint8 ``(T, H, W, 3)``)."""

    output: Path | None
    num_frames: int
    height: int
    width: int
    fps: object
    num_chunks: int
    coding_seconds: float
    tokenizer_seconds: float
    video: Tensor | None = None


def read_file_header(path: str | os.PathLike) -> StreamHeader:
    """The header of an ``.lfq`` file (checked, see :func:`lfq_kit.compression.container.read_header`)."""
    with open(path, "rb") as f:
        return read_header(f, os.fspath(path))


def load_tokenizer(
    header: StreamHeader, tokenizer: FrozenTokenizer | str | os.PathLike | None, path: str
) -> FrozenTokenizer:
    """The tokenizer to decode with: the one given, or the header's hint; its hash must equal the header's.

    Raises:
        FileNotFoundError: none given and the hinted checkpoint is gone (the message says to pass it).
        ValueError: a tokenizer whose hash differs from the file's (both named).
    """
    if tokenizer is None:
        hinted = header.hints.get("tokenizer")
        if hinted is None or not Path(hinted).is_file():
            raise FileNotFoundError(
                f"{path}: the tokenizer it was compressed with ({hinted!r}, hash "
                f"{header.tokenizer_hash[:12]}) is not there; pass --tokenizer"
            )
        tokenizer = hinted
    tok = tokenizer if isinstance(tokenizer, FrozenTokenizer) else FrozenTokenizer(tokenizer)
    if tok.hash != header.tokenizer_hash:
        raise ValueError(
            f"{path}: compressed with tokenizer {header.tokenizer_hash[:12]}, but {tok.path!r} has hash "
            f"{tok.hash[:12]} (a different tokenizer or other weights)"
        )
    return tok


def load_prior(
    header: StreamHeader, prior: TokenPrior | str | os.PathLike | None, path: str, device: str | torch.device = "cpu"
) -> TokenPrior:
    """The prior to decode with: the one given (an object, or the path of its file), else the header's hint (for
    ``factorized``, then the sidecar of the hinted tokenizer); its identity must equal the header's.

    Raises:
        FileNotFoundError: the prior's file is not found (the message says which option names it).
        ValueError: a prior of another kind, or whose identity differs from the file's (both named).
    """
    if header.prior == "packed":
        chosen: TokenPrior = PackedPrior(header.codebook_size)
    elif isinstance(prior, TokenPrior):
        chosen = prior
    else:
        location = prior or header.hints.get("prior")
        if location is None and header.prior == "factorized" and header.hints.get("tokenizer"):
            location = sidecar_path(header.hints["tokenizer"])
        if location is None or not Path(location).is_file():
            option = "--mlm" if header.prior == "mlm" else "--prior-file"
            raise FileNotFoundError(f"{path}: its {header.prior} prior ({location}) is not there; pass {option}")
        if header.prior == "factorized":
            chosen = FactorizedPrior.load(location, tokenizer_hash=header.tokenizer_hash)
        else:
            from .mlm_prior import MaskedLMPrior

            steps, seed = header.prior_params
            chosen = MaskedLMPrior.load(location, steps=steps, seed=seed, device=device)
    if chosen.kind != header.prior:
        raise ValueError(f"{path}: coded with a {header.prior} prior, got a {chosen.kind} prior")
    if chosen.identity != header.prior_id:
        given = chosen.hint or "the prior given"
        raise ValueError(
            f"{path}: coded with {header.prior} prior {header.prior_id[:12]}, but {given} has identity "
            f"{chosen.identity[:12]} (other weights or coding parameters)"
        )
    return chosen


def _check_record(header: StreamHeader, record: ChunkRecord, path: str, seen_frames: int) -> None:
    last = record.index == header.num_chunks - 1
    expected = header.num_frames - seen_frames if last else header.chunk_frames
    if record.frames != expected:
        raise CompressedFileError(path, f"holds {record.frames} frames; the header implies {expected}", record.index)


def _decoded(header: StreamHeader, batch: list[ChunkRecord], prior: TokenPrior, path: str) -> list[DecodedChunk]:
    grid = batch[0].grid
    try:
        ids = prior.decode([r.payload for r in batch], grid)
    except Exception as err:  # constriction and unpacking refuse malformed payloads in their own ways
        raise CompressedFileError(path, f"payload does not decode: {err}", batch[0].index) from err
    out = []
    for record, chunk_ids in zip(batch, ids):
        if token_crc(chunk_ids.numpy()) != record.token_crc or int(chunk_ids.max()) >= header.codebook_size:
            raise CompressedFileError(
                path,
                "decoded tokens fail their checksum: the prior gave the decoder other probabilities than the encoder",
                record.index,
            )
        out.append(DecodedChunk(record.index, record.frames, chunk_ids))
    return out


def _decode_batches(
    path: str, prior: TokenPrior | str | None, batch_size: int, device: str | torch.device
) -> Iterator[list[DecodedChunk]]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    with open(path, "rb") as f:
        header = read_header(f, path)
        chosen = load_prior(header, prior, path, device)
        batch: list[ChunkRecord] = []
        seen = 0
        for record in read_chunks(f, path, header):
            _check_record(header, record, path, seen)
            seen += record.frames
            if batch and (len(batch) == batch_size or batch[-1].grid != record.grid):
                yield _decoded(header, batch, chosen, path)
                batch = []
            batch.append(record)
        if batch:
            yield _decoded(header, batch, chosen, path)


def decode_tokens(
    path: str | os.PathLike,
    prior: TokenPrior | str | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
) -> Iterator[DecodedChunk]:
    """Yield every chunk's token ids, in order, a batch of ``batch_size`` chunks (of one token grid) decoded at a
    time; the ids do not depend on ``batch_size`` or ``device``.

    Raises:
        CompressedFileError: a damaged, truncated or inconsistent file (the chunk named), or tokens that fail
            their checksum.
        ValueError, FileNotFoundError: see :func:`load_prior`.
    """
    for batch in _decode_batches(os.fspath(path), prior, batch_size, device):
        yield from batch


@torch.no_grad()
def decompress_video(
    path: str | os.PathLike,
    output: str | os.PathLike | None = None,
    tokenizer: FrozenTokenizer | str | None = None,
    prior: TokenPrior | str | None = None,
    batch_size: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = False,
    crf: int = 18,
    keep_video: bool = False,
) -> DecompressReport:
    """Decode ``path`` to frames at the original size, rate and frame count, written to ``output`` (an MP4,
    H.264 at ``crf``; yuv444p for odd sizes) and/or kept in memory (``keep_video``).

    Raises:
        CompressedFileError, ValueError, FileNotFoundError: see :func:`decode_tokens`, :func:`load_tokenizer`.
    """
    from tqdm.auto import tqdm

    from ..data.video_writer import VideoWriter, to_uint8_frames

    path = os.fspath(path)
    header = read_file_header(path)
    tok = load_tokenizer(header, tokenizer, path)
    h, w = header.height, header.width
    writer = VideoWriter(output, w, h, header.fps, crf=crf) if output is not None else None
    kept: list[Tensor] = []
    times = {"coding": 0.0, "tokenizer": 0.0}
    batches = _decode_batches(path, prior, batch_size, device)
    bar = tqdm(
        total=header.num_chunks,
        unit="chunk",
        desc=f"decompress {path}",
        disable=not progress or header.num_chunks < 2,
        file=sys.stderr,
    )
    try:
        with bar:
            while True:
                t0 = time.perf_counter()
                batch = next(batches, None)
                t1 = time.perf_counter()
                if batch is None:
                    break
                videos = tok.decode(torch.stack([c.ids for c in batch]).to(device)).cpu()
                times["coding"] += t1 - t0
                times["tokenizer"] += time.perf_counter() - t1
                for chunk, video in zip(batch, videos):
                    video = video[:, : chunk.frames, :h, :w]
                    if writer is not None:
                        writer.write(video)
                    if keep_video:
                        kept.append(torch.from_numpy(to_uint8_frames(video)))
                bar.update(len(batch))
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return DecompressReport(
        Path(output) if output is not None else None,
        header.num_frames,
        h,
        w,
        header.fps,
        header.num_chunks,
        times["coding"],
        times["tokenizer"],
        torch.cat(kept) if keep_video else None,
    )
