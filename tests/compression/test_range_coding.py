"""Range coding through constriction with integer weights: exact round trips, the fixed weight table, the coder's
overhead over −Σ log2 p, and weights that ignore float noise far below the 1/16-nat grid."""

import math

import numpy as np
import pytest
import torch

from lfq_kit.compression.range_coding import (
    _TABLE,
    STREAM_FLUSH_BITS,
    RangeDecoderStream,
    encode_symbols,
    ideal_bits,
    log_prob_weights,
    probabilities,
)


def test_the_weight_table_has_its_known_values():
    assert _TABLE[0] == 2**20
    assert _TABLE[16] == round(2**20 / math.e) == 385750  # one nat below the top
    assert _TABLE[-1] == 1 and len(_TABLE) == 223  # 2^-20 ≈ e^-13.86 -> 222 grid steps
    assert (np.diff(_TABLE) <= 0).all()


def test_weights_depend_on_the_grid_only():
    logp = torch.tensor([0.0, -1.0, -2.5, -40.0, -1.03], dtype=torch.float64)
    w = log_prob_weights(logp)
    assert w.tolist() == [2**20, _TABLE[16], _TABLE[40], 1, _TABLE[16]]  # -1.03 rounds to step 16 too
    noisy = logp + torch.tensor([1e-12, -1e-12, 3e-13, 1e-9, -2e-12], dtype=torch.float64)
    assert (log_prob_weights(noisy) == w).all()


def test_round_trip_of_mixed_parts_and_the_overhead_bound():
    rng = np.random.default_rng(0)
    marginal = np.maximum(1, np.round(rng.dirichlet(np.full(512, 0.3)) * 2**20)).astype(np.int64)
    iid = rng.choice(512, size=20000, p=probabilities(marginal))
    rows = np.maximum(1, np.round(rng.dirichlet(np.full(64, 0.5), size=3000) * 2**20)).astype(np.int64)
    per = np.array([rng.choice(64, p=p) for p in probabilities(rows)])
    payload = encode_symbols([(iid, marginal), (per, rows)])
    stream = RangeDecoderStream(payload)
    assert (stream.decode(marginal, len(iid)) == iid).all() and (stream.decode(rows) == per).all()
    ideal = ideal_bits(iid, marginal) + ideal_bits(per, rows)
    assert ideal < 8 * len(payload) <= 1.01 * ideal + STREAM_FLUSH_BITS


@pytest.mark.parametrize(
    "weights, message",
    [
        (np.array([0.25, 0.75]), "integer array"),  # probabilities: an int64 cast would make them zeros
        (np.array([True, True]), "integer array"),
        (np.array([3, 0, 5]), "1 weights below 1, the smallest 0"),
        (np.array([[3, 1], [-2, 4]]), "1 weights below 1, the smallest -2"),
        (np.zeros((2, 0), dtype=np.int64), "at least one symbol"),
    ],
)
def test_weights_that_break_the_contract_are_refused_by_every_entry_point(weights, message):
    symbols = np.zeros(weights.shape[0] if weights.ndim == 2 else 1, dtype=np.int64)
    with pytest.raises(ValueError, match=message):
        probabilities(weights)
    with pytest.raises(ValueError, match=message):
        ideal_bits(symbols, weights)
    with pytest.raises(ValueError, match=message):
        encode_symbols([(symbols, weights)])
    with pytest.raises(ValueError, match=message):
        RangeDecoderStream(b"\0" * 8).decode(weights, 1)


def test_valid_integer_weights_of_any_integer_dtype_give_exact_probabilities():
    assert probabilities(np.array([1, 3], dtype=np.uint8)).tolist() == [0.25, 0.75]
    assert ideal_bits(np.array([1, 1]), np.array([1, 3], dtype=np.int32)) == pytest.approx(-2 * math.log2(0.75))
