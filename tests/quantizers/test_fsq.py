"""FSQ: contract, mixed-radix indices, every-code round trip, low precision, extremes, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from lfq_kit.quantizers import FSQ, base
from lfq_kit.registry import QUANTIZERS


def _inputs_hitting_every_code(fsq: FSQ) -> tuple[torch.Tensor, torch.Tensor]:
    """All ``Π L`` codes as an FSQ input ``(1, d, K)`` that lands on each, plus the expected integer levels.

    Code ``j`` has digits ``(j // Π_{i'<i} L_i') mod L_i``, written out here without the module's helpers;
    the input inverts the documented bound ``b = tanh(x + atanh(o/h))·h − o`` at ``b = level`` (clipped
    into the open range for the outermost even levels, which rounding reaches).
    """
    levels = fsq.levels
    K = math.prod(levels)
    j = torch.arange(K, dtype=torch.float64)
    inputs, integer_levels = [], []
    radix = 1
    for L in levels:
        digit = torch.div(j, radix, rounding_mode="floor") % L
        radix *= L
        level = digit - L // 2
        h = (L - 1) * (1 - 1e-3) / 2
        o = 0.5 if L % 2 == 0 else 0.0
        shift = math.atanh(o / h) if o < h else 0.0
        target = ((level + o) / h).clamp(-0.999, 0.999)
        inputs.append(torch.atanh(target) - shift)
        integer_levels.append(level)
    return torch.stack(inputs).unsqueeze(0).float(), torch.stack(integer_levels)


def test_registered_and_sizes():
    assert QUANTIZERS.get("FSQ") is FSQ
    fsq = FSQ()
    assert fsq.levels == (8, 5, 5, 5) and fsq.dim == 4 and fsq.codebook_size == 1000
    assert FSQ(levels=[8, 8, 8, 5, 5, 5]).codebook_size == 64000
    assert FSQ(16, levels=[8, 5, 5, 5]).dim == 16


@pytest.mark.parametrize("dim", [None, 16])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_shapes_and_dtypes(dim, dtype):
    fsq = FSQ(dim, levels=(8, 5, 5, 5))
    z = torch.randn(2, fsq.dim, 3, 4, 5).to(dtype)
    out = fsq(z)
    assert out.quantized.shape == z.shape and out.quantized.dtype == dtype
    assert out.indices.shape == (2, 3, 4, 5) and out.indices.dtype == torch.int64
    assert 0 <= int(out.indices.min()) and int(out.indices.max()) < 1000
    assert out.loss.shape == () and out.loss.dtype == torch.float32 and out.loss.item() == 0.0
    assert not out.loss.requires_grad
    assert out.metrics == {}


@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (2, 3, 4, 7), (5, 6), (2,)])
def test_every_code_round_trips(levels):
    fsq = FSQ(levels=levels).eval()
    K = math.prod(levels)
    z, integer_levels = _inputs_hitting_every_code(fsq)
    out = fsq(z)
    assert torch.equal(out.indices, torch.arange(K).unsqueeze(0))  # forward: code j → index j
    half_width = torch.tensor([L // 2 for L in levels], dtype=torch.float64)[:, None]
    expected_codes = (integer_levels / half_width).float().unsqueeze(0)
    assert torch.equal(out.quantized, expected_codes)
    codes = fsq.indices_to_codes(torch.arange(K).unsqueeze(0))  # index j → code j
    assert torch.equal(codes, expected_codes)
    assert codes.min() >= -1 and codes.max() <= 1
    assert torch.unique(codes[0].T, dim=0).shape[0] == K  # K distinct codes


def test_channel_zero_is_least_significant():
    fsq = FSQ(levels=(8, 5, 5, 5))
    codes = fsq.indices_to_codes(torch.tensor([[0, 1, 8, 40, 999]]))
    # Digits: 0 → (0,0,0,0); 1 → (1,0,0,0); 8 → (0,1,0,0); 40 → (0,0,1,0); 999 → (7,4,4,4).
    expected = torch.tensor(
        [
            [-1.0, -0.75, -1.0, -1.0, 0.75],
            [-1.0, -1.0, -0.5, -1.0, 1.0],
            [-1.0, -1.0, -1.0, -0.5, 1.0],
            [-1.0, -1.0, -1.0, -1.0, 1.0],
        ]
    ).unsqueeze(0)
    assert torch.equal(codes, expected)


def test_code_grid_per_channel():
    fsq = FSQ(levels=(8, 5, 3))
    codes = fsq.indices_to_codes(torch.arange(fsq.codebook_size).unsqueeze(0))[0]
    assert codes[0].unique().tolist() == [-1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75]
    assert codes[1].unique().tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert codes[2].unique().tolist() == [-1.0, 0.0, 1.0]


@pytest.mark.parametrize("dim", [None, 12])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_eval_quantized_equals_indices_to_codes_exactly(dim, dtype):
    torch.manual_seed(0)
    fsq = FSQ(dim, levels=(8, 8, 8, 5, 5, 5)).eval()
    out = fsq(torch.randn(3, fsq.dim, 6, 6).to(dtype) * 2)
    assert torch.equal(fsq.indices_to_codes(out.indices).to(dtype), out.quantized)


def test_bf16_indices_in_range_and_equal_fp32_indices_of_same_values():
    torch.manual_seed(1)
    fsq = FSQ(levels=(8, 8, 8, 5, 5, 5))  # 64,000 codes: indices far beyond bf16's exact integers (256)
    z = (torch.randn(4, 6, 16, 16) * 3).bfloat16()
    out = fsq(z)
    reference = fsq(z.float()).indices
    assert out.indices.min() >= 0 and out.indices.max() < 64000
    assert out.indices.max() > 256
    assert torch.equal(out.indices, reference)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_out = fsq(z.float())
    assert torch.equal(autocast_out.indices, reference)
    assert autocast_out.quantized.dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_extreme_values_hit_the_outermost_codes(dtype):
    fsq = FSQ(levels=(8, 8, 8, 5, 5, 5))
    big = torch.full((1, 6, 2), 1e4 if dtype != torch.float16 else 6e4).to(dtype)
    high, low = fsq(big), fsq(-big)
    assert (high.indices == 64000 - 1).all() and (low.indices == 0).all()
    assert torch.equal(high.quantized[0, :, 0].float(), torch.tensor([0.75, 0.75, 0.75, 1.0, 1.0, 1.0]))
    assert (low.quantized == -1).all()


def test_zero_maps_to_the_centre_code():
    fsq = FSQ(levels=(8, 5, 4, 3))
    out = fsq(torch.zeros(1, 4, 3))
    assert (out.quantized == 0).all()
    # Digits (4, 2, 2, 1) → 4 + 2·8 + 2·40 + 1·160.
    assert (out.indices == 4 + 2 * 8 + 2 * 40 + 160).all()


def test_two_levels_follow_the_sign():
    fsq = FSQ(levels=(2, 2))
    out = fsq(torch.tensor([[[0.3, -0.3, 5.0, -5.0], [-0.01, 0.01, -2.0, 2.0]]]))
    assert out.indices.tolist() == [[1, 2, 1, 2]]


def test_nan_input_is_refused_and_stays_in_range_where_unchecked(monkeypatch):
    fsq = FSQ(levels=(8, 5, 5, 5))
    z = torch.randn(1, 4, 6)
    z[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        fsq(z)
    # Training on an accelerator checks without a sync (no raise here): indices must still be in range.
    monkeypatch.setattr(base, "_sync_free_check", lambda z, training: True)
    indices = fsq(z).indices
    assert indices.min() >= 0 and indices.max() < 1000
    assert torch.isnan(fsq(z).quantized[0, :, 2]).any()  # the NaN is not hidden behind a valid code


def test_straight_through_gradient_of_the_bound():
    levels = (8, 5, 5, 5)
    fsq = FSQ(levels=levels)
    z = torch.randn(2, 4, 7, requires_grad=True)
    fsq(z).quantized.sum().backward()
    expected = []
    for i, L in enumerate(levels):
        h = (L - 1) * (1 - 1e-3) / 2
        o = 0.5 if L % 2 == 0 else 0.0
        t = torch.tanh(z.detach()[:, i] + math.atanh(o / h))
        expected.append((1 - t**2) * h / (L // 2))
    torch.testing.assert_close(z.grad, torch.stack(expected, 1))


def test_gradient_reaches_input_and_projections():
    fsq = FSQ(10, levels=(8, 5, 5, 5))
    z = torch.randn(2, 10, 5, requires_grad=True)
    fsq(z).quantized.pow(2).sum().backward()
    assert z.grad.abs().sum() > 0
    assert fsq.project_in.weight.grad.abs().sum() > 0 and fsq.project_out.weight.grad.abs().sum() > 0


def test_rejects_bad_levels():
    with pytest.raises(ValueError, match=">= 2"):
        FSQ(levels=(8, 1))
    with pytest.raises(ValueError, match="non-empty"):
        FSQ(levels=())
    with pytest.raises(ValueError, match="2\\^62"):
        FSQ(levels=(2**31, 2**31, 4))
