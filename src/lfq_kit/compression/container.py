"""The ``.lfq`` container: a versioned header, then one record per chunk (a clip of the video), each with its
length and checksums, so a long video streams in and out in constant memory and any damage is found and named.

Layout (little-endian; format version 1)::

    header   magic b"LFQV" | version u16 | prior kind u8 | reserved u8 (0)
             tokenizer hash 32 B (sha256) | prior identity 32 B (sha256)
             codebook size u64 | frames u64 | fps numerator u32 | fps denominator u32
             height u32 | width u32 | padded height u32 | padded width u32
             chunk frames u32 | chunks u32 | prior parameters 2 × u32
             hints length u16 | hints (UTF-8 JSON: the paths of the tokenizer and prior files; advisory)
             crc32 u32 of everything above
    chunk    index u32 | frames u32 (real, before padding) | token grid T', H', W' 3 × u16
             payload length u32 | token crc32 u32 | crc32 u32 of the 22 bytes above and the payload
             payload

So the header takes :data:`HEADER_FIXED_BYTES` (134) plus the length of the hints, and each chunk
:data:`CHUNK_OVERHEAD_BYTES` (26) plus its payload. The token checksum (crc32 of the chunk's ids as int32
little-endian) is checked after entropy decoding: a prior that gave the decoder other probabilities than the
encoder is caught there, instead of decoding to wrong tokens in silence. Padding is always at the bottom and
right edges (edge pixels repeated) and at the end of a chunk (its last frame repeated).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import BinaryIO

import numpy as np

__all__ = [
    "CHUNK_OVERHEAD_BYTES",
    "FORMAT_VERSION",
    "HEADER_FIXED_BYTES",
    "MAGIC",
    "PRIOR_KINDS",
    "ChunkRecord",
    "CompressedFileError",
    "StreamHeader",
    "read_chunks",
    "read_header",
    "token_crc",
    "write_chunk",
    "write_header",
]

MAGIC = b"LFQV"
FORMAT_VERSION = 1
#: Prior names in the order of their header code.
PRIOR_KINDS = ("packed", "factorized", "mlm")

_HEADER = struct.Struct("<4sHBB32s32sQQIIIIIIIIIIH")
_CRC = struct.Struct("<I")
_CHUNK = struct.Struct("<IIHHHII")
HEADER_FIXED_BYTES = _HEADER.size + _CRC.size  # 134
CHUNK_OVERHEAD_BYTES = _CHUNK.size + _CRC.size  # 26


class CompressedFileError(ValueError):
    """A ``.lfq`` file that cannot be read: wrong magic or version, a damaged header, a truncated or corrupted
    chunk, or bytes after the last chunk.

    Attributes:
        path: the file.
        chunk: index of the chunk where the problem is, or None for the header (and for trailing bytes).
        offset: byte offset in the file where the damaged part starts.
    """

    def __init__(self, path: str, reason: str, chunk: int | None = None, offset: int | None = None) -> None:
        self.path, self.reason, self.chunk, self.offset = path, reason, chunk, offset
        where = "header" if chunk is None else f"chunk {chunk}"
        at = "" if offset is None else f" (byte {offset})"
        super().__init__(f"{path}: {where}{at}: {reason}")

    def __reduce__(self):
        return type(self), (self.path, self.reason, self.chunk, self.offset)


@dataclass(frozen=True)
class StreamHeader:
    """What a file says about the video and how to decode it.

    Attributes:
        tokenizer_hash: hex sha256 of the tokenizer (:func:`lfq_kit.models.tokenizer_hash`).
        prior: ``"packed"``, ``"factorized"`` or ``"mlm"``.
        prior_id: hex sha256 identifying the prior (its tables or weights and coding parameters).
        prior_params: two integers the prior needs to decode (the masked LM: steps and order seed).
        codebook_size: vocabulary ``K`` of the tokens.
        num_frames: frames of the original video.
        fps: exact frame rate.
        height, width: original frame size in pixels.
        padded_height, padded_width: the size the tokenizer saw (bottom/right edge padding).
        chunk_frames: frames per chunk before padding (every chunk but the last has exactly this many).
        num_chunks: chunk records that follow the header.
        hints: advisory paths (``"tokenizer"``, ``"prior"``) for decompressing without naming the files again.
    """

    tokenizer_hash: str
    prior: str
    prior_id: str
    prior_params: tuple[int, int]
    codebook_size: int
    num_frames: int
    fps: Fraction
    height: int
    width: int
    padded_height: int
    padded_width: int
    chunk_frames: int
    num_chunks: int
    hints: dict[str, str] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        hints = json.dumps(self.hints, sort_keys=True).encode()
        if len(hints) > 0xFFFF:
            raise ValueError(f"hints of {len(hints)} bytes exceed the header's 65535")
        fps = Fraction(self.fps)
        body = (
            _HEADER.pack(
                MAGIC,
                FORMAT_VERSION,
                PRIOR_KINDS.index(self.prior),
                0,
                bytes.fromhex(self.tokenizer_hash),
                bytes.fromhex(self.prior_id),
                self.codebook_size,
                self.num_frames,
                fps.numerator,
                fps.denominator,
                self.height,
                self.width,
                self.padded_height,
                self.padded_width,
                self.chunk_frames,
                self.num_chunks,
                *self.prior_params,
                len(hints),
            )
            + hints
        )
        return body + _CRC.pack(zlib.crc32(body))

    @property
    def size(self) -> int:
        """Bytes the header takes in the file: 134 plus the hints' JSON."""
        return HEADER_FIXED_BYTES + len(json.dumps(self.hints, sort_keys=True).encode())


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk as stored: ``frames`` real frames (before padding), token ``grid`` ``(T', H', W')``, the
    entropy-coded ``payload`` and the crc32 of its tokens (:func:`token_crc`)."""

    index: int
    frames: int
    grid: tuple[int, int, int]
    payload: bytes
    token_crc: int

    @property
    def size(self) -> int:
        """Bytes the chunk takes in the file: 26 plus the payload."""
        return CHUNK_OVERHEAD_BYTES + len(self.payload)


def token_crc(ids: np.ndarray) -> int:
    """crc32 of token ids as int32 little-endian, in C order."""
    return zlib.crc32(np.ascontiguousarray(ids, dtype="<i4").tobytes())


def write_header(out: BinaryIO, header: StreamHeader) -> int:
    """Write ``header``; returns the bytes written."""
    return out.write(header.to_bytes())


def write_chunk(out: BinaryIO, chunk: ChunkRecord) -> int:
    """Write one chunk record; returns the bytes written."""
    head = _CHUNK.pack(chunk.index, chunk.frames, *chunk.grid, len(chunk.payload), chunk.token_crc)
    crc = zlib.crc32(chunk.payload, zlib.crc32(head))
    return out.write(head + _CRC.pack(crc) + chunk.payload)


def _read_exact(src: BinaryIO, n: int) -> bytes:
    data = src.read(n)
    return data if data is not None else b""


def read_header(src: BinaryIO, path: str) -> StreamHeader:
    """Read and check the header at the start of ``src``.

    Raises:
        CompressedFileError: not an lfq-kit file (magic), another format version, a header cut short, or one whose
            checksum fails (corrupted).
    """
    fixed = _read_exact(src, _HEADER.size)
    if fixed[:4] != MAGIC:
        raise CompressedFileError(
            path, f"not an lfq-kit compressed file: magic {fixed[:4]!r}, expected {MAGIC!r}", offset=0
        )
    if len(fixed) < _HEADER.size:
        raise CompressedFileError(path, f"truncated: the file ends inside the header ({len(fixed)} bytes)", offset=0)
    (_, version, kind, _, tok, prior_id, k, frames, num, den, h, w, ph, pw, chunk_frames, chunks, pa, pb, hints_len) = (
        _HEADER.unpack(fixed)
    )
    if version != FORMAT_VERSION:
        raise CompressedFileError(
            path, f"format version {version}; this lfq-kit reads version {FORMAT_VERSION}", offset=4
        )
    hints = _read_exact(src, hints_len)
    crc = _read_exact(src, _CRC.size)
    if len(hints) < hints_len or len(crc) < _CRC.size:
        raise CompressedFileError(path, "truncated: the file ends inside the header", offset=0)
    if _CRC.unpack(crc)[0] != zlib.crc32(fixed + hints):
        raise CompressedFileError(path, "checksum mismatch: the header is corrupted", offset=0)
    if kind >= len(PRIOR_KINDS) or den == 0:
        raise CompressedFileError(path, f"invalid fields (prior code {kind}, fps {num}/{den})", offset=0)
    return StreamHeader(
        tok.hex(),
        PRIOR_KINDS[kind],
        prior_id.hex(),
        (pa, pb),
        k,
        frames,
        Fraction(num, den),
        h,
        w,
        ph,
        pw,
        chunk_frames,
        chunks,
        json.loads(hints.decode()),
    )


def read_chunks(src: BinaryIO, path: str, header: StreamHeader) -> Iterator[ChunkRecord]:
    """Yield the ``header.num_chunks`` chunk records that follow the header, one at a time, each checked.

    Raises:
        CompressedFileError: naming the chunk index and byte offset: a chunk missing or cut short (truncated file),
            a checksum mismatch (corrupted), an index out of sequence; or bytes after the last chunk.
    """
    offset = header.size
    for index in range(header.num_chunks):
        head = _read_exact(src, _CHUNK.size + _CRC.size)
        if len(head) < _CHUNK.size + _CRC.size:
            what = "missing" if not head else "cut short in its record header"
            raise CompressedFileError(path, f"truncated: chunk {index} of {header.num_chunks} is {what}", index, offset)
        stored_index, frames, t, h, w, length, tokens_crc = _CHUNK.unpack(head[: _CHUNK.size])
        payload = _read_exact(src, length)
        if len(payload) < length:
            raise CompressedFileError(
                path, f"truncated: its payload needs {length} bytes, the file holds {len(payload)}", index, offset
            )
        if _CRC.unpack(head[_CHUNK.size :])[0] != zlib.crc32(payload, zlib.crc32(head[: _CHUNK.size])):
            raise CompressedFileError(path, "checksum mismatch: the chunk is corrupted", index, offset)
        if stored_index != index:
            raise CompressedFileError(path, f"out of sequence: the record says chunk {stored_index}", index, offset)
        yield ChunkRecord(index, frames, (t, h, w), payload, tokens_crc)
        offset += _CHUNK.size + _CRC.size + length
    extra = len(_read_exact(src, 1 << 16))
    if extra:
        raise CompressedFileError(
            path,
            f"{extra}{'+' if extra == 1 << 16 else ''} unexpected bytes after the last "
            f"chunk ({header.num_chunks} chunks)",
            offset=offset,
        )
