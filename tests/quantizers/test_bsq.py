"""BSQ: contract, unit-norm codes, LFQ-compatible indices, exact entropies, loss composition, gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from lfq_kit.quantizers import BSQ, LFQ
from lfq_kit.registry import QUANTIZERS


def _all_codes(d: int) -> torch.Tensor:
    """``(2^d, d)`` float64 codes ``±1/√d``, row ``j`` holding the bits of ``j`` LSB first."""
    j = torch.arange(2**d)
    bits = (j[:, None] >> torch.arange(d)) & 1
    return (bits.double() * 2 - 1) / math.sqrt(d)


def _brute_force_entropies(z: torch.Tensor, inv_temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample and batch entropy (nats) from a full softmax over every code, in float64."""
    d = z.shape[1]
    u = F.normalize(z.double().movedim(1, -1).reshape(-1, d), dim=-1)
    p = torch.softmax(inv_temperature * u @ _all_codes(d).T, dim=-1)  # (N, 2^d)
    per_sample = -(p * p.log()).sum(-1).mean()
    mean = p.mean(0)
    return per_sample, -(mean * mean.log()).sum()


def test_registered_and_sizes():
    assert QUANTIZERS.get("BSQ") is BSQ
    bsq = BSQ()
    assert bsq.dim == 18 and bsq.codebook_size == 2**18 and bsq.bits_per_token == 18.0


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_shapes_dtypes_and_metrics(dtype):
    bsq = BSQ(dim=8)
    z = torch.randn(2, 8, 3, 4, 5).to(dtype)
    out = bsq(z)
    assert out.quantized.shape == z.shape and out.quantized.dtype == dtype
    assert out.indices.shape == (2, 3, 4, 5) and out.indices.dtype == torch.int64
    assert 0 <= int(out.indices.min()) and int(out.indices.max()) < 256
    assert out.loss.shape == () and out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    assert set(out.metrics) == {"per_sample_entropy", "batch_entropy", "commitment", "entropy_penalty"}
    for value in out.metrics.values():
        assert value.shape == () and value.dtype == torch.float32 and not value.requires_grad


def test_low_precision_indices_equal_fp32_indices():
    bsq = BSQ(dim=10)
    z = torch.randn(4, 10, 9).bfloat16()
    reference = bsq(z.float())
    out = bsq(z)
    assert torch.equal(out.indices, reference.indices)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        autocast_out = bsq(z.float())
    assert torch.equal(autocast_out.indices, reference.indices)
    assert autocast_out.quantized.dtype == torch.float32
    torch.testing.assert_close(autocast_out.loss, reference.loss)


@pytest.mark.parametrize("d", [1, 5, 12])
def test_codes_have_unit_norm_and_lsb_first_order(d):
    bsq = BSQ(dim=d)
    codes = bsq.indices_to_codes(torch.arange(2**d).unsqueeze(0))[0].T  # (2^d, d)
    torch.testing.assert_close(codes.norm(dim=-1), torch.ones(2**d), rtol=0, atol=1e-6)
    assert torch.equal(codes.double(), _all_codes(d).float().double())
    if d > 1:
        s = 1 / math.sqrt(d)
        # Invariant 1: (+, −, …, −) is index 1 and (−, …, −, +) is index 2^(d−1).
        assert codes[1].tolist() == pytest.approx([s] + [-s] * (d - 1))
        assert codes[2 ** (d - 1)].tolist() == pytest.approx([-s] * (d - 1) + [s])


def test_forward_output_is_unit_norm_code():
    bsq = BSQ(dim=6)
    z = torch.randn(3, 6, 7) * 5
    out = bsq(z)
    torch.testing.assert_close(out.quantized.norm(dim=1), torch.ones(3, 7), rtol=0, atol=1e-6)
    s = 1 / math.sqrt(6)
    assert torch.equal(out.quantized, torch.where(z > 0, s, -s))


def test_exact_zero_is_a_negative_bit():
    bsq = BSQ(dim=4)
    z = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, -2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 3.0]]])
    out = bsq(z)
    assert out.indices.tolist() == [[0, 1, 8]]
    assert (out.quantized[0, :, 0] == -0.5).all()  # the all-zero token → all −1/√4


@pytest.mark.parametrize("d", [3, 8, 10])
@pytest.mark.parametrize("inv_temperature", [2.0, 25.0])
def test_entropies_equal_brute_force_softmax(d, inv_temperature):
    torch.manual_seed(d)
    bsq = BSQ(dim=d, inv_temperature=inv_temperature)
    z = torch.randn(3, d, 11)
    z[0, :, :4] = torch.randn(d, 1)  # some repeated tokens, so the batch distribution is not flat
    out = bsq(z)
    per_sample, batch = _brute_force_entropies(z, inv_temperature)
    assert abs(out.metrics["per_sample_entropy"].item() - per_sample.item()) < 1e-5
    assert abs(out.metrics["batch_entropy"].item() - batch.item()) < 1e-5
    torch.testing.assert_close(out.metrics["entropy_penalty"], (per_sample - batch).float(), rtol=0, atol=2e-5)


def test_grouped_entropy_is_an_upper_bound_and_exact_for_one_group():
    torch.manual_seed(1)
    z = torch.randn(2, 8, 20)
    exact = BSQ(dim=8, inv_temperature=30.0)(z).metrics["batch_entropy"]
    one_group = BSQ(dim=8, inv_temperature=30.0, entropy_group_size=8)(z).metrics["batch_entropy"]
    grouped = BSQ(dim=8, inv_temperature=30.0, entropy_group_size=2)(z).metrics["batch_entropy"]
    torch.testing.assert_close(one_group, exact)
    assert grouped > exact + 1e-3


def test_entropy_oracles():
    d = 6
    # Every token on one corner: per-sample and batch entropy near 0 at a sharp temperature.
    same = torch.ones(2, d, 5)
    out = BSQ(dim=d, inv_temperature=500.0)(same)
    assert out.metrics["per_sample_entropy"] < 1e-3 and out.metrics["batch_entropy"] < 1e-3
    # Tokens spread over all 2^d corners: batch entropy ln K.
    spread = BSQ(dim=d).indices_to_codes(torch.arange(2**d).unsqueeze(0))
    out = BSQ(dim=d, inv_temperature=500.0)(spread)
    assert abs(out.metrics["batch_entropy"].item() - d * math.log(2)) < 1e-4
    # z = 0: every code equally likely, per-sample entropy ln K.
    out = BSQ(dim=d)(torch.zeros(1, d, 3))
    assert abs(out.metrics["per_sample_entropy"].item() - d * math.log(2)) < 1e-5


def test_indices_equal_lfq_indices():
    torch.manual_seed(2)
    z = torch.randn(3, 9, 4, 4)
    z[0, 2] = 0.0  # ties too
    assert torch.equal(BSQ(dim=9)(z).indices, LFQ(dim=9)(z).indices)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_eval_quantized_equals_indices_to_codes_exactly(dtype):
    bsq = BSQ(dim=7).eval()
    out = bsq(torch.randn(2, 7, 5, 5).to(dtype))
    assert torch.equal(bsq.indices_to_codes(out.indices).to(dtype), out.quantized)


def test_loss_composition_and_annealing():
    torch.manual_seed(3)
    bsq = BSQ(
        dim=5,
        commitment_weight=0.4,
        entropy_weight=0.1,
        diversity_gamma=0.5,
        entropy_anneal_factor=3.0,
        entropy_anneal_steps=100,
    )
    z = torch.randn(2, 5, 8)
    u = F.normalize(z, dim=1)
    q = torch.where(z > 0, 1.0, -1.0) / math.sqrt(5)
    for step, weight in [(0, 0.3), (50, 0.2), (100, 0.1), (1000, 0.1)]:
        bsq.set_step(step)
        out = bsq(z)
        torch.testing.assert_close(out.metrics["commitment"], (u - q).pow(2).mean())
        penalty = out.metrics["per_sample_entropy"] - 0.5 * out.metrics["batch_entropy"]
        torch.testing.assert_close(out.metrics["entropy_penalty"], penalty)
        torch.testing.assert_close(out.loss, 0.4 * out.metrics["commitment"] + weight * penalty)


def test_straight_through_gradient_is_that_of_the_normalization():
    z = torch.randn(2, 6, 5, requires_grad=True)
    BSQ(dim=6)(z).quantized.mul(torch.arange(6.0).view(1, 6, 1)).sum().backward()
    z_ref = z.detach().clone().requires_grad_(True)
    F.normalize(z_ref, dim=1).mul(torch.arange(6.0).view(1, 6, 1)).sum().backward()
    torch.testing.assert_close(z.grad, z_ref.grad)


def test_loss_gradient_is_finite_and_nonzero():
    z = torch.randn(2, 8, 6, requires_grad=True)
    BSQ(dim=8, inv_temperature=10.0)(z).loss.backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_rejects_bad_dim_and_input():
    with pytest.raises(ValueError, match=r"\[1, 62\]"):
        BSQ(dim=0)
    with pytest.raises(ValueError, match=r"\(B, 4, \*S\)"):
        BSQ(dim=4)(torch.randn(2, 3, 5))
