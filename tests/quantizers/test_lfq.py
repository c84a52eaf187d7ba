"""LFQ: the paper's bit order, ties, entropy oracles and brute-force checks (invariants 1-7)."""

import math

import pytest
import torch

from lfq_kit.quantizers import LFQ
from lfq_kit.quantizers.entropy import bit_patterns, exact_code_entropy, grouped_code_entropy
from lfq_kit.quantizers.lfq import annealed_weight

TAU = 0.01


def all_codes(d: int) -> torch.Tensor:
    """(2^d, d) every ±1 code, row j = code of index j under the paper's LSB-first formula."""
    return bit_patterns(d) * 2 - 1


def brute_force_entropies(z: torch.Tensor, tau: float = TAU) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-sample, batch) entropies in nats from the full N × K softmax of −‖z − c‖² / τ."""
    codes = all_codes(z.shape[-1]).double()
    logp = torch.log_softmax(-torch.cdist(z.double(), codes).pow(2) / tau, dim=-1)
    per_sample = -(logp.exp() * logp).sum(-1).mean()
    mean = logp.exp().mean(0)
    return per_sample, -(mean * mean.clamp_min(1e-300).log()).sum()


def tokens(z_nd: torch.Tensor) -> torch.Tensor:
    """(N, d) → LFQ input (1, d, N)."""
    return z_nd.T.unsqueeze(0)


@pytest.mark.parametrize("d", [1, 2, 5, 8, 12])
def test_index_code_round_trip_over_all_codes(d):
    q = LFQ(d).eval()
    codes = all_codes(d)  # row j is, by the paper's formula, the code with index j
    out = q(tokens(codes))
    assert torch.equal(out.indices[0], torch.arange(2**d))
    assert torch.equal(q.indices_to_codes(out.indices), tokens(codes))
    assert torch.equal(out.quantized, q.indices_to_codes(out.indices))


def test_bit_order_is_lsb_first():
    d = 6
    q = LFQ(d)
    first = torch.full((d,), -1.0)
    first[0] = 1.0
    last = torch.full((d,), -1.0)
    last[-1] = 1.0
    idx = q(tokens(torch.stack([first, last]))).indices[0]
    assert idx.tolist() == [1, 2 ** (d - 1)]


def test_exact_zero_quantizes_to_minus_one():
    q = LFQ(4)
    out = q(torch.zeros(1, 4, 3))
    assert torch.equal(out.quantized, -torch.ones(1, 4, 3))
    assert out.indices.tolist() == [[0, 0, 0]]


def test_entropy_oracles():
    d = 8
    q = LFQ(d, entropy_anneal_steps=0)
    # every token on the same corner: both entropies ≈ 0
    same = q(tokens(torch.ones(64, d))).metrics
    assert same["per_sample_entropy"] == pytest.approx(0.0, abs=1e-6)
    assert same["batch_entropy"] == pytest.approx(0.0, abs=1e-6)
    # evenly over all K corners: batch = ln K
    spread = q(tokens(all_codes(d))).metrics
    assert spread["batch_entropy"] == pytest.approx(d * math.log(2), abs=1e-4)
    # z = 0: per-sample = ln K
    zero = q(tokens(torch.zeros(5, d))).metrics
    assert zero["per_sample_entropy"] == pytest.approx(d * math.log(2), abs=1e-5)


def test_batch_entropy_averages_over_batch_elements():
    d = 6
    corner_a, corner_b = torch.ones(d), -torch.ones(d)
    z = torch.stack([corner_a.expand(10, d).T, corner_b.expand(10, d).T])  # (2, d, 10)
    assert LFQ(d)(z).metrics["batch_entropy"] == pytest.approx(math.log(2), abs=1e-6)


@pytest.mark.parametrize("d", [1, 3, 6, 9, 10])
def test_exact_entropy_matches_brute_force(d):
    z = torch.randn(50, d) * 0.02  # soft assignments: both entropies far from their limits
    per_sample, batch = brute_force_entropies(z)
    m = LFQ(d)(tokens(z)).metrics
    assert m["per_sample_entropy"].double() == pytest.approx(per_sample.item(), abs=1e-5)
    assert m["batch_entropy"].double() == pytest.approx(batch.item(), abs=1e-5)


def test_exact_entropy_matches_brute_force_at_dim_18():
    z = torch.randn(6, 18) * 0.01
    per_sample, batch = brute_force_entropies(z)
    m = LFQ(18)(tokens(z)).metrics
    assert m["per_sample_entropy"].double() == pytest.approx(per_sample.item(), abs=1e-4)
    assert m["batch_entropy"].double() == pytest.approx(batch.item(), abs=1e-4)


def test_exact_entropy_gradient_matches_brute_force():
    d = 7
    z = (torch.randn(20, d) * 0.02).double().requires_grad_()
    logits = 4 * z / TAU
    exact_code_entropy(logits).backward()
    grad_exact = z.grad.clone()
    z.grad = None
    _, batch = brute_force_entropies(z)
    batch.backward()
    assert torch.allclose(grad_exact.double(), z.grad, atol=1e-4, rtol=1e-3)


def test_exact_entropy_at_dim_24_is_finite_and_bounded():
    soft = exact_code_entropy(torch.randn(64, 24))
    assert 0 < soft.item() <= 24 * math.log(2)
    # near-hard assignments of 64 distinct tokens: 64 codes equally likely
    hard = exact_code_entropy(torch.randn(64, 24).sign() * 60)
    assert hard.item() == pytest.approx(math.log(64), abs=1e-3)


def test_grouped_entropy_upper_bounds_exact_and_is_exact_for_one_group():
    logits = torch.randn(40, 10) * 3
    exact = exact_code_entropy(logits)
    assert grouped_code_entropy(logits, 10).item() == pytest.approx(exact.item(), abs=1e-5)
    assert grouped_code_entropy(logits, 3).item() >= exact.item() - 1e-5


def test_softmax_of_inner_product_equals_softmax_of_distance():
    d = 8
    z = torch.randn(10, d).double()
    codes = all_codes(d).double()
    a = torch.softmax(2 * z @ codes.T / TAU, -1)
    b = torch.softmax(-torch.cdist(z, codes).pow(2) / TAU, -1)
    assert torch.allclose(a, b, atol=1e-10)


def test_entropy_penalty_lies_in_its_range():
    d = 6
    q = LFQ(d)
    for scale in [0.0, 0.003, 0.05, 1.0]:
        m = q(torch.randn(3, d, 17) * scale).metrics
        assert -math.log(2**d) - 1e-5 <= m["entropy_penalty"] <= math.log(2**d) + 1e-5
    assert q(tokens(all_codes(d))).metrics["entropy_penalty"] == pytest.approx(-d * math.log(2), abs=1e-4)


def test_loss_is_weighted_sum_of_metrics():
    q = LFQ(5, entropy_weight=0.1, commitment_weight=0.25, diversity_gamma=1.0, entropy_anneal_steps=0)
    out = q(torch.randn(2, 5, 4, 4))
    m = out.metrics
    expected = 0.25 * m["commitment"] + 0.1 * (m["per_sample_entropy"] - m["batch_entropy"])
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_commitment_value():
    z = torch.tensor([[0.5, -2.0, 1.0]]).T.unsqueeze(0)  # (1, 3, 1)
    # q = (+1, −1, +1): squared errors 0.25, 1, 0 → mean 1.25 / 3
    assert LFQ(3)(z).metrics["commitment"].item() == pytest.approx(1.25 / 3)


def test_entropy_annealing_schedule():
    step = torch.tensor(0)
    assert annealed_weight(0.1, step, 3.0, 2000).item() == pytest.approx(0.3)
    assert annealed_weight(0.1, torch.tensor(1000), 3.0, 2000).item() == pytest.approx(0.2)
    assert annealed_weight(0.1, torch.tensor(5000), 3.0, 2000).item() == pytest.approx(0.1)
    assert annealed_weight(0.1, torch.tensor(7), 3.0, 0).item() == pytest.approx(0.1)
    q = LFQ(4)
    q.set_step(1000)
    assert q.current_entropy_weight().item() == pytest.approx(0.2)
    assert q.state_dict()["step"].item() == 1000  # checkpointed, so resume is exact


@pytest.mark.parametrize("mode", ["bf16_input", "autocast"])
def test_bf16(mode):
    q = LFQ(10)
    z32 = torch.randn(2, 10, 3, 4, 4)
    z16 = z32.bfloat16()
    ref = q(z16.float())
    if mode == "bf16_input":
        out = q(z16)
        assert out.quantized.dtype == torch.bfloat16
    else:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = q(z16.float())
        assert out.quantized.dtype == torch.float32
    assert torch.equal(out.indices, ref.indices)
    assert torch.isfinite(out.loss) and out.loss.dtype == torch.float32
    assert out.loss.item() == pytest.approx(ref.loss.item(), rel=1e-5)


def test_straight_through_gradient_is_identity_for_quantized():
    z = torch.randn(2, 6, 5, requires_grad=True)
    q = LFQ(6, entropy_weight=0.0, commitment_weight=0.0)
    out = q(z)
    g = torch.randn_like(z)
    (out.quantized * g).sum().backward()
    assert torch.equal(z.grad, g)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"\(B, 6, \*S\)"):
        LFQ(6)(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="floating-point"):
        LFQ(6)(torch.ones(2, 6, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="dim"):
        LFQ(0)


def test_large_dims_need_the_grouped_entropy():
    with pytest.raises(ValueError, match="entropy_group_size"):
        LFQ(40)
    assert LFQ(40, entropy_group_size=10)(torch.randn(1, 40, 3)).indices.shape == (1, 3)
    with pytest.raises(ValueError, match="entropy_group_size must be None or >= 1"):
        LFQ(8, entropy_group_size=0)
