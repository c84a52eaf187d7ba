"""compress_video / decompress_video on real frames: exact token round trips through every payload whatever the batch
sizes, the packed file's exact size, entropy-coded payloads below packed, original size and frame count back, and no
partial output on any error."""

import math
from fractions import Fraction

import av
import pytest
import torch

from lfq_kit.compression import (
    CompressedFileError,
    MaskedLMPrior,
    PackedPrior,
    TensorSource,
    TokenPrior,
    compress_video,
    decode_tokens,
    decompress_video,
    read_file_header,
)
from lfq_kit.compression.container import CHUNK_OVERHEAD_BYTES
from lfq_kit.models import FrozenTokenizer, tokenizer_hash


def _tokens(path, **kw) -> list[torch.Tensor]:
    return [c.ids for c in decode_tokens(path, **kw)]


def _no_leftovers(folder) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")], "a temporary file was left behind"


@pytest.mark.parametrize("kind", ["packed", "factorized", "mlm"])
def test_tokens_round_trip_exactly_encoding_with_batch_8_and_decoding_with_batch_1(
    kind, tok, carphone16, factorized, mlm_prior, tmp_path
):
    frames, fps = carphone16  # 40 frames: 8 chunks of 5 (mlm) or 2 of 17 and one of 6 padded to 7
    prior = {"packed": None, "factorized": factorized, "mlm": mlm_prior}[kind]
    report = compress_video(TensorSource(frames, fps), tmp_path / "a.lfq", tok, prior, batch_size=8, keep_tokens=True)
    assert report.num_chunks == (8 if kind == "mlm" else 3)
    decoded = _tokens(tmp_path / "a.lfq", prior=prior, batch_size=1)
    assert len(decoded) == report.num_chunks and all(torch.equal(a, b) for a, b in zip(decoded, report.tokens))
    _no_leftovers(tmp_path)


def test_packed_file_is_exactly_the_documented_size(tok, carphone16, tmp_path):
    frames, fps = carphone16
    report = compress_video(TensorSource(frames, fps), tmp_path / "p.lfq", tok, keep_tokens=True)
    header = read_file_header(tmp_path / "p.lfq")
    grids = [tuple(t.shape) for t in report.tokens]
    assert grids == [(9, 8, 8), (9, 8, 8), (4, 8, 8)]  # 17, 17 and 6 -> 7 frames (1 + 2k), 2x spatial
    payload = sum(math.ceil(math.prod(g) * 18 / 8) for g in grids)
    assert report.payload_bytes == payload
    assert (tmp_path / "p.lfq").stat().st_size == header.size + 3 * CHUNK_OVERHEAD_BYTES + payload == report.file_bytes
    assert report.bpp == pytest.approx(8 * report.file_bytes / (40 * 16 * 16))


def test_entropy_coded_payloads_are_smaller_than_packed_on_real_tokens(
    tok, carphone16, factorized, bikes_tokens, mlm_prior, tmp_path
):
    frames, fps = carphone16
    src = TensorSource(frames, fps)
    packed = compress_video(src, tmp_path / "p.lfq", tok, chunk_frames=5)
    fact = compress_video(src, tmp_path / "f.lfq", tok, factorized, chunk_frames=5)
    # the masked LM's heads with the training tokens' sub-token marginals in their biases: what a trained LM learns
    # first (the tiny one trained 2 steps)
    subs = mlm_prior.model.tokens.split(bikes_tokens.flatten())  # (N, 2)
    counts = torch.stack([torch.bincount(subs[:, k], minlength=512) for k in range(2)]).double() + 0.5
    with torch.no_grad():
        mlm_prior.model.tokens.bias.copy_((counts / counts.sum(1, keepdim=True)).log())
    mlm = compress_video(src, tmp_path / "m.lfq", tok, mlm_prior)
    assert packed.num_tokens == fact.num_tokens == mlm.num_tokens == 8 * 192
    assert fact.payload_bytes < 0.8 * packed.payload_bytes and mlm.payload_bytes < 0.8 * packed.payload_bytes


def test_odd_resolution_and_frame_count_come_back_at_their_original_size(tok, carphone16, tmp_path):
    frames = carphone16[0][:7, :15, :13].contiguous()  # 7 frames of 13 × 15 pixels
    compress_video(TensorSource(frames, Fraction(30000, 1001)), tmp_path / "o.lfq", tok)
    header = read_file_header(tmp_path / "o.lfq")
    assert (header.num_frames, header.height, header.width, header.padded_height, header.padded_width) == (
        7,
        15,
        13,
        16,
        14,
    )
    report = decompress_video(tmp_path / "o.lfq", tmp_path / "o.mp4", keep_video=True)
    assert report.video.shape == (7, 15, 13, 3)
    with av.open(str(tmp_path / "o.mp4")) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        assert (stream.width, stream.height, stream.average_rate) == (13, 15, Fraction(30000, 1001))
    assert len(decoded) == 7
    _no_leftovers(tmp_path)


def test_tokens_decode_to_the_tokenizers_own_reconstruction(tok, carphone16, tmp_path):
    frames, fps = carphone16
    compress_video(TensorSource(frames[:17], fps), tmp_path / "r.lfq", tok)
    video = frames[:17].permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    expected = ((tok.decode(tok.encode(video))[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 3, 0)
    assert torch.equal(decompress_video(tmp_path / "r.lfq", keep_video=True).video, expected)


class _FailingSource(TensorSource):
    def read(self, start, count):
        if start > 0:
            raise RuntimeError("disk gone")
        return super().read(start, count)


def test_an_error_midway_leaves_no_output_file(tok, carphone16, tmp_path):
    frames, fps = carphone16
    with pytest.raises(RuntimeError, match="disk gone"):
        compress_video(_FailingSource(frames, fps), tmp_path / "x.lfq", tok, batch_size=1)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def packed_file(tok, carphone16, tmp_path):
    frames, fps = carphone16
    compress_video(TensorSource(frames, fps), tmp_path / "v.lfq", tok)
    return tmp_path / "v.lfq"


def test_a_flipped_byte_raises_naming_the_chunk_and_leaves_no_video(packed_file):
    header = read_file_header(packed_file)
    data = bytearray(packed_file.read_bytes())
    second = header.size + CHUNK_OVERHEAD_BYTES + 9 * 8 * 8 * 18 // 8  # start of chunk 1
    data[second + CHUNK_OVERHEAD_BYTES + 100] ^= 0x01
    bad = packed_file.with_name("bad.lfq")
    bad.write_bytes(bytes(data))
    with pytest.raises(CompressedFileError, match=f"chunk 1 \\(byte {second}\\): checksum mismatch"):
        decompress_video(bad, packed_file.with_name("bad.mp4"))
    assert not packed_file.with_name("bad.mp4").exists()
    _no_leftovers(packed_file.parent)


def test_a_truncated_file_raises_naming_the_chunk_and_leaves_no_video(packed_file):
    cut = packed_file.with_name("cut.lfq")
    cut.write_bytes(packed_file.read_bytes()[:-10])
    with pytest.raises(
        CompressedFileError, match="chunk 2 .*truncated: its payload needs 576 bytes, the file holds 566"
    ):
        decompress_video(cut, packed_file.with_name("cut.mp4"))
    assert not packed_file.with_name("cut.mp4").exists()
    _no_leftovers(packed_file.parent)


def test_a_tokenizer_with_another_hash_is_refused(packed_file, tokenizer_ckpt):
    other = FrozenTokenizer(tokenizer_ckpt)
    with torch.no_grad():
        next(other.model.parameters()).add_(1e-3)
    other.hash = tokenizer_hash(other.model)
    header = read_file_header(packed_file)
    with pytest.raises(
        ValueError, match=f"compressed with tokenizer {header.tokenizer_hash[:12]}, but .* has hash {other.hash[:12]}"
    ):
        decompress_video(packed_file, packed_file.with_name("o.mp4"), tokenizer=other)
    assert not packed_file.with_name("o.mp4").exists()


def test_a_prior_with_another_identity_is_refused(tok, carphone16, factorized, tmp_path):
    frames, fps = carphone16
    compress_video(TensorSource(frames, fps), tmp_path / "f.lfq", tok, factorized)
    other = type(factorized)(
        factorized.first + 1, factorized.conditional, factorized.tokenizer_hash, "other.safetensors"
    )
    with pytest.raises(
        ValueError, match=f"coded with factorized prior {factorized.identity[:12]}, but other.safetensors"
    ):
        _tokens(tmp_path / "f.lfq", prior=other)
    with pytest.raises(ValueError, match="coded with a factorized prior, got a packed prior"):
        _tokens(tmp_path / "f.lfq", prior=PackedPrior(tok.codebook_size))


class _Drifted(TokenPrior):
    """The masked-LM prior under the file's identity but with other probabilities: what float drift would cause."""

    kind = "mlm"

    def __init__(self, inner: MaskedLMPrior, identity: str) -> None:
        self.inner, self._identity, self.codebook_size = inner, identity, inner.codebook_size

    identity = property(lambda self: self._identity)
    encode = property(lambda self: self.inner.encode)
    decode = property(lambda self: self.inner.decode)
    ideal_bits = property(lambda self: self.inner.ideal_bits)


def test_a_prior_that_decodes_other_tokens_fails_the_token_checksum(tok, carphone16, mlm_prior, tmp_path):
    frames, fps = carphone16
    compress_video(TensorSource(frames[:10], fps), tmp_path / "m.lfq", tok, mlm_prior)
    identity = mlm_prior.identity
    with torch.no_grad():
        mlm_prior.model.tokens.bias.add_(torch.randn_like(mlm_prior.model.tokens.bias))
    with pytest.raises(CompressedFileError, match="chunk 0: decoded tokens fail their checksum"):
        _tokens(tmp_path / "m.lfq", prior=_Drifted(mlm_prior, identity))


def test_the_masked_lm_refuses_chunks_of_another_grid(tok, carphone16, mlm_prior, tmp_path):
    frames, fps = carphone16
    big = frames.repeat_interleave(2, 1).repeat_interleave(2, 2)  # 32 × 32: grid (3, 16, 16)
    with pytest.raises(ValueError, match=r"models token grids \(3, 8, 8\).*chunk's token grid is \(3, 16, 16\)"):
        compress_video(TensorSource(big[:5], fps), tmp_path / "g.lfq", tok, mlm_prior)
    with pytest.raises(ValueError, match="trained on clips of 5 frames; chunk_frames 17 differs"):
        compress_video(TensorSource(frames, fps), tmp_path / "g.lfq", tok, mlm_prior, chunk_frames=17)
    assert list(tmp_path.iterdir()) == []
