"""The .lfq container: header fields round-trip, documented sizes, and every kind of damage is named (header or chunk
index and byte offset)."""

import io
from fractions import Fraction

import numpy as np
import pytest

from lfq_kit.compression.container import (
    CHUNK_OVERHEAD_BYTES,
    HEADER_FIXED_BYTES,
    ChunkRecord,
    CompressedFileError,
    StreamHeader,
    read_chunks,
    read_header,
    token_crc,
    write_chunk,
    write_header,
)

HEADER = StreamHeader(
    "ab" * 32,
    "factorized",
    "cd" * 32,
    (12, 7),
    2**18,
    37,
    Fraction(30000, 1001),
    19,
    21,
    20,
    22,
    17,
    3,
    {"tokenizer": "/x/last.ckpt"},
)
CHUNKS = [
    ChunkRecord(i, 17 if i < 2 else 3, (9 if i < 2 else 2, 10, 11), bytes([i]) * (5 + i), 1000 + i) for i in range(3)
]


def _file() -> bytes:
    out = io.BytesIO()
    write_header(out, HEADER)
    for c in CHUNKS:
        write_chunk(out, c)
    return out.getvalue()


def _read(data: bytes) -> tuple[StreamHeader, list[ChunkRecord]]:
    src = io.BytesIO(data)
    header = read_header(src, "f.lfq")
    return header, list(read_chunks(src, "f.lfq", header))


def test_header_and_chunks_round_trip_with_the_documented_sizes():
    data = _file()
    header, chunks = _read(data)
    assert header == HEADER and chunks == CHUNKS
    hints = len(b'{"tokenizer": "/x/last.ckpt"}')
    assert HEADER_FIXED_BYTES == 134 and CHUNK_OVERHEAD_BYTES == 26 and HEADER.size == 134 + hints
    assert len(data) == 134 + hints + sum(26 + len(c.payload) for c in CHUNKS)
    assert header.fps == Fraction(30000, 1001)  # exact, not 29.97


@pytest.mark.parametrize("chunk", [0, 1, 2])
def test_a_flipped_payload_byte_names_its_chunk_and_offset(chunk):
    data = bytearray(_file())
    start = HEADER.size + sum(c.size for c in CHUNKS[:chunk])
    data[start + 26 + 2] ^= 0x40
    with pytest.raises(CompressedFileError, match=f"chunk {chunk} \\(byte {start}\\): checksum mismatch") as err:
        _read(bytes(data))
    assert err.value.chunk == chunk and err.value.offset == start


def test_a_flipped_byte_in_a_chunk_record_header_is_caught_too():
    data = bytearray(_file())
    data[HEADER.size + 4] ^= 0x01  # chunk 0's frame count
    with pytest.raises(CompressedFileError, match="chunk 0 .*checksum mismatch"):
        _read(bytes(data))


@pytest.mark.parametrize(
    "cut, chunk, what",
    [(0, 0, "missing"), (10, 0, "cut short"), (26 + 2, 0, "payload needs 5 bytes"), (26 + 5 + 26 + 6, 2, "missing")],
)
def test_a_truncated_file_names_the_chunk_where_it_ends(cut, chunk, what):
    data = _file()[: HEADER.size + cut]
    with pytest.raises(CompressedFileError, match=f"chunk {chunk} .*truncated.*{what}") as err:
        _read(data)
    assert err.value.chunk == chunk


def test_a_truncated_header_bad_magic_version_and_damaged_header():
    data = _file()
    with pytest.raises(CompressedFileError, match="header .*truncated"):
        _read(data[:50])
    with pytest.raises(CompressedFileError, match="not an lfq-kit compressed file: magic b'RIFF'"):
        _read(b"RIFF" + data[4:])
    with pytest.raises(CompressedFileError, match="format version 2; this lfq-kit reads version 1"):
        _read(data[:4] + b"\x02\x00" + data[6:])
    damaged = bytearray(data)
    damaged[60] ^= 0xFF
    with pytest.raises(CompressedFileError, match="header .*checksum mismatch"):
        _read(bytes(damaged))


def test_bytes_after_the_last_chunk_are_refused():
    with pytest.raises(CompressedFileError, match="3 unexpected bytes after the last chunk"):
        _read(_file() + b"xyz")


def test_token_crc_is_the_crc32_of_int32_little_endian_ids():
    import zlib

    ids = np.array([[1, 2], [262143, 0]], dtype=np.int64)
    assert token_crc(ids) == zlib.crc32(np.array([1, 2, 262143, 0], dtype="<i4").tobytes())
    assert token_crc(ids) != token_crc(ids[::-1])
