"""The factorized prior: weights from counts by the documented formulas (marginal of sub-token A, B given A), a file
that carries the tokenizer hash, exact round trips, and fewer bits than packed on real tokens."""

import pytest
import torch

from lfq_kit.compression import FactorizedPrior, PackedPrior, fit_factorized_prior, sidecar_path
from lfq_kit.compression.factorized import default_num_groups


def test_weights_follow_the_smoothed_counts():
    ids = torch.tensor([0, 0, 0, 1, 5, 5 + 8 * 3])  # K = 64 = 8^2: sub-tokens (A, B) = (id % 8, id // 8)
    prior = fit_factorized_prior([ids], 64, "00" * 32, num_groups=2, alpha=2.0)
    w = lambda p: max(1, round(p * 2**20))  # noqa: E731
    counts_a = [3, 1, 0, 0, 0, 2, 0, 0]
    assert prior.first.tolist() == [w((c + 0.5) / (6 + 4)) for c in counts_a]
    marginal_b = [(c + 0.5) / (6 + 4) for c in [5, 0, 0, 1, 0, 0, 0, 0]]
    # A = 5 was followed by B = 0 once and B = 3 once: (pair count + 2 m_B) / (2 + 2)
    assert prior.conditional[0, 5].tolist() == [w(((b == 0) + (b == 3) + 2 * m) / 4) for b, m in enumerate(marginal_b)]
    # A = 2 never occurred: its row is the marginal of B
    assert prior.conditional[0, 2].tolist() == [w(m) for m in marginal_b]
    assert prior.num_tokens == 6 and prior.codebook_size == 64 and prior.conditional.shape == (1, 8, 8)
    one = fit_factorized_prior([ids], 64, "00" * 32, num_groups=1)
    assert one.conditional.shape == (0, 64, 64) and one.first[0] == w(3.5 / (6 + 32))


def test_default_groups():
    assert default_num_groups(2**18) == 2 and default_num_groups(2**16) == 1 and default_num_groups(64000) == 1
    assert default_num_groups(2**20) == 2 and default_num_groups(5**9) == 3  # 1024^2; 125^3 (1953125 ids)
    with pytest.raises(ValueError, match="give num_groups"):
        default_num_groups(2**20 + 7)


def test_round_trip_and_fewer_bits_than_packed_on_real_tokens(factorized, tok, carphone16):
    frames, _ = carphone16
    video = frames[:17].permute(3, 0, 1, 2)[None].float() / 127.5 - 1
    ids = tok.encode(video)  # held-out tokens: the prior was fitted on bikes.mp4
    payloads = factorized.encode(ids)
    assert torch.equal(factorized.decode(payloads, tuple(ids.shape[1:])), ids)
    packed = PackedPrior(tok.codebook_size).encode(ids)
    assert len(payloads[0]) < 0.8 * len(packed[0])
    assert factorized.ideal_bits(ids)[0] < 8 * len(payloads[0]) <= 1.01 * factorized.ideal_bits(ids)[0] + 64


def test_the_file_carries_the_tokenizer_hash_and_refuses_another(factorized, tok, tmp_path):
    path = factorized.save(tmp_path / "tokenizer.prior.safetensors", sources=["sample:bikes.mp4"])
    loaded = FactorizedPrior.load(path, tokenizer_hash=tok.hash)
    assert (loaded.first == factorized.first).all() and (loaded.conditional == factorized.conditional).all()
    assert loaded.identity == factorized.identity
    with pytest.raises(
        ValueError, match=f"fitted on the tokens of tokenizer {tok.hash[:12]}, not of this tokenizer \\({'ef' * 6}\\)"
    ):
        FactorizedPrior.load(path, tokenizer_hash="ef" * 32)
    with pytest.raises(FileNotFoundError, match="lfq-kit fit-prior"):
        FactorizedPrior.load(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(ValueError, match="is not a factorized prior file"):
        FactorizedPrior.load(tmp_path / "junk.safetensors")
    assert sidecar_path("runs/q/checkpoints/last.ckpt").as_posix() == "runs/q/checkpoints/last.prior.safetensors"
    assert not list(tmp_path.glob(".*"))  # no partial file left
