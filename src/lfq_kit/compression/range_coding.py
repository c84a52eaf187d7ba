"""Range coding of categorical symbols through constriction (bamler-lab; ``stream.queue.RangeEncoder`` /
``RangeDecoder``), with the coding probabilities built from integers only, so both sides agree bit for bit.

A model is an integer weight table ``w`` (``(S,)`` for i.i.d. symbols, ``(M, S)`` for one distribution per symbol),
every weight ``>= 1``; the coder's probabilities are ``w / w.sum(-1)`` in float64, an exactly rounded IEEE division of
integers, identical on any machine. constriction then quantizes them to its fixed-point precision with a
deterministic algorithm (``perfect=False``), the same on both sides.

:func:`log_prob_weights` turns log-probabilities from a network into such weights: rounded to a grid of
1/16 nat (:data:`LOGP_GRID`) and looked up in a fixed table, so a log-probability that differs by float rounding
(another batch size, another BLAS) maps to the same weight unless it lies within that rounding of a grid boundary.

The coder's cost over the ideal ``−Σ log2 p``: a few bits per million symbols from constriction's 24-bit
quantization, plus at most :data:`STREAM_FLUSH_BITS` bits per stream (the final words it flushes); a payload is a
whole number of 32-bit words.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Sequence

import constriction
import numpy as np
import torch
from torch import Tensor

__all__ = [
    "LOGP_GRID",
    "STREAM_FLUSH_BITS",
    "WEIGHT_BITS",
    "RangeDecoderStream",
    "checked_weights",
    "encode_symbols",
    "ideal_bits",
    "log_prob_weights",
    "probabilities",
]

#: Weights are fixed-point probabilities with this many fractional bits (the largest weight is 2^20).
WEIGHT_BITS = 20
#: Log-probabilities are rounded to multiples of 1/16 nat before the table lookup (a 3 % step in probability:
#: about 0.0005 nats of extra cost per symbol).
LOGP_GRID = 16
#: Bits a stream may take beyond its symbols' cost: the 64 bits of state constriction flushes at the end.
STREAM_FLUSH_BITS = 64

_MAX_STEP = math.ceil(WEIGHT_BITS * math.log(2) * LOGP_GRID)  # below 2^-20 every weight is the floor, 1


def _weight_table() -> np.ndarray:
    """Weight of grid step ``q``: ``round(2^20 · exp(−q/16))``, floor 1, in 40-digit decimal arithmetic (libmpdec's
    ``exp`` is correctly rounded), so the table is the same on every platform, whatever its libm."""
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        scale = decimal.Decimal(2) ** WEIGHT_BITS
        values = [
            (scale * (decimal.Decimal(-q) / LOGP_GRID).exp()).to_integral_value(decimal.ROUND_HALF_EVEN)
            for q in range(_MAX_STEP + 1)
        ]
    return np.array([max(1, int(v)) for v in values], dtype=np.int64)


_TABLE = _weight_table()


def log_prob_weights(log_probs: Tensor) -> np.ndarray:
    """``(..., S)`` log-probabilities (nats, float64 preferred) → ``(..., S)`` int64 weights in ``[1, 2^20]``.

    ``q = round(−16 · log p)`` clamped to the table, then ``w = round(2^20 · e^(−q/16))`` (floor 1). The result
    depends only on ``q``, so on the coarse grid, not on the last bits of ``log_probs``.

    Raises:
        ValueError: a NaN log-probability.
    """
    steps = torch.round(-log_probs.detach().double().cpu() * LOGP_GRID)
    if torch.isnan(steps).any():
        raise ValueError("log-probabilities contain NaN; the prior's network produced non-finite logits")
    return _TABLE[steps.clamp_(0, _MAX_STEP).long().numpy()]


def checked_weights(weights: np.ndarray) -> np.ndarray:
    """``weights`` as an int64 array after checking the model's contract: integers, every one ``>= 1``, at least
    one symbol per row.

    Raises:
        ValueError: a float or other non-integer array (probabilities must go through :func:`log_prob_weights`
            first; a cast would truncate them to zeros), an empty last axis, or a weight below 1 (a symbol of
            probability 0 could not be coded, and its ideal cost would be infinite).
    """
    w = np.asarray(weights)
    if w.dtype == np.bool_ or not np.issubdtype(w.dtype, np.integer):
        raise ValueError(
            f"range-coding weights must be an integer array (every weight >= 1); got dtype {w.dtype}: "
            "turn probabilities into weights with log_prob_weights(log_probs)"
        )
    if w.ndim == 0 or w.shape[-1] == 0:
        raise ValueError(f"range-coding weights need at least one symbol per row; got shape {w.shape}")
    if w.size and w.min() < 1:
        raise ValueError(
            f"every range-coding weight must be >= 1 (a zero-probability symbol cannot be coded); "
            f"got {int((w < 1).sum())} weights below 1, the smallest {int(w.min())}"
        )
    return w.astype(np.int64, copy=False)


def probabilities(weights: np.ndarray) -> np.ndarray:
    """Integer weights ``(..., S)`` → float64 probabilities ``w / Σ w`` (exact IEEE division; sum 1 up to rounding).

    Raises:
        ValueError: weights that break the contract of :func:`checked_weights`.
    """
    w = checked_weights(weights)
    return w.astype(np.float64) / w.sum(-1, keepdims=True).astype(np.float64)


def ideal_bits(symbols: np.ndarray, weights: np.ndarray) -> float:
    """``−Σ log2 p(symbol)`` (bits) under the weights: ``(M,)`` symbols with ``(S,)`` or ``(M, S)`` weights.

    Raises:
        ValueError: weights that break the contract of :func:`checked_weights`.
    """
    p = probabilities(weights)
    chosen = p[symbols] if p.ndim == 1 else np.take_along_axis(p, symbols[:, None].astype(np.int64), 1)[:, 0]
    return float(-np.log2(chosen).sum())


def _family(weights: np.ndarray):
    p = probabilities(weights)
    if p.ndim == 1:
        return constriction.stream.model.Categorical(p, perfect=False), None
    return constriction.stream.model.Categorical(perfect=False), p


def encode_symbols(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> bytes:
    """Range-code a sequence of ``(symbols (M,) int, weights (S,) or (M, S) int64)`` parts, in order, into one
    stream; returns its bytes (32-bit words, little-endian).

    Raises:
        ValueError: weights that break the contract of :func:`checked_weights`.
    """
    encoder = constriction.stream.queue.RangeEncoder()
    for symbols, weights in parts:
        symbols = np.ascontiguousarray(symbols, dtype=np.int32).reshape(-1)
        if symbols.size == 0:
            continue
        model, probs = _family(weights)
        if probs is None:
            encoder.encode(symbols, model)
        else:
            encoder.encode(symbols, model, probs)
    return encoder.get_compressed().astype("<u4").tobytes()


class RangeDecoderStream:
    """Decodes, part by part, what :func:`encode_symbols` wrote; the caller gives each part's weights in the same
    order (the masked-LM prior computes the next part's weights from the symbols decoded so far).

    Raises:
        ValueError: a payload that is not a whole number of 32-bit words.
    """

    def __init__(self, payload: bytes) -> None:
        if len(payload) % 4:
            raise ValueError(f"a range-coded payload is whole 32-bit words; got {len(payload)} bytes")
        words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        self._decoder = constriction.stream.queue.RangeDecoder(words)

    def decode(self, weights: np.ndarray, count: int | None = None) -> np.ndarray:
        """Decode ``count`` i.i.d. symbols under ``(S,)`` weights, or one symbol per row of ``(M, S)`` weights;
        returns int64 ``(M,)``."""
        model, probs = _family(weights)
        if probs is None:
            if not count:
                return np.zeros(0, dtype=np.int64)
            return np.asarray(self._decoder.decode(model, int(count)), dtype=np.int64)
        if probs.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._decoder.decode(model, probs), dtype=np.int64)
