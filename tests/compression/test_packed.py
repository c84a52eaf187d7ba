"""The packed payload: exactly ceil(N·log2 K / 8) bytes, LSB-first bit order, exact round trip."""

import numpy as np
import pytest
import torch

from lfq_kit.compression.packed import PackedPrior, pack_bits, packed_bytes, unpack_bits


def test_bit_order_is_lsb_first_across_tokens():
    # ids 1 and 2 in 3 bits: bits 1,0,0 | 0,1,0 -> byte 0b00010001
    assert pack_bits(np.array([1, 2]), 3) == bytes([0b00010001])
    assert pack_bits(np.array([2**18 - 1]), 18) == b"\xff\xff\x03"


@pytest.mark.parametrize("bits", [1, 7, 8, 10, 18])
def test_round_trip_and_exact_size(bits):
    ids = torch.randint(0, 2**bits, (1000,)).numpy()
    data = pack_bits(ids, bits)
    assert len(data) == packed_bytes(1000, bits) == -(-1000 * bits // 8)
    np.testing.assert_array_equal(unpack_bits(data, 1000, bits), ids)


def test_prior_round_trips_chunks_and_refuses_a_wrong_length():
    prior = PackedPrior(2**18)
    ids = torch.randint(0, 2**18, (3, 2, 4, 5))
    payloads = prior.encode(ids)
    assert [len(p) for p in payloads] == [40 * 18 // 8] * 3
    assert torch.equal(prior.decode(payloads, (2, 4, 5)), ids)
    assert prior.ideal_bits(ids) == [40 * 18.0] * 3
    with pytest.raises(ValueError, match="40 tokens × 18 bits is 90 bytes, got 89"):
        prior.decode([payloads[0][:-1]], (2, 4, 5))


def test_a_vocabulary_not_a_power_of_two_takes_ceil_log2_bits():
    prior = PackedPrior(1000)
    ids = torch.tensor([[[[0, 999, 512]]]])
    assert prior.bits == 10 and torch.equal(prior.decode(prior.encode(ids), (1, 1, 3)), ids)
