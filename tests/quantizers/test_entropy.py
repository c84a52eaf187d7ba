"""The exact batch entropy's custom autograd Function: gradients against a brute-force softmax, chunking, dtypes."""

import math

import pytest
import torch

from lfq_kit.quantizers import entropy
from lfq_kit.quantizers.entropy import bit_patterns, exact_code_entropy, grouped_code_entropy


def brute_force_batch_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(mean_n softmax_c(⟨x_n, bits(c)⟩)) over all K = 2^d codes, float64, differentiable.

    Per-bit logits x give log p(c | x) = Σ_{i ∈ bits(c)} x_i + const, so a row-wise log_softmax over the
    (N, K) matrix x · bitsᵀ is each token's code distribution (no factorization used).
    """
    codes = bit_patterns(logits.shape[-1]).double()
    p = torch.log_softmax(logits.double() @ codes.T, dim=-1).exp().mean(0)
    return -(p * p.clamp_min(1e-300).log()).sum()


def factorized_float64_entropy(logits: torch.Tensor) -> torch.Tensor:
    """The same two-half factorization in float64 without floors: the reference at d = 18."""
    x = logits.double()
    a = (x.shape[-1] + 1) // 2

    def half(h: torch.Tensor) -> torch.Tensor:
        log_all_zero = torch.nn.functional.logsigmoid(-h).sum(-1, keepdim=True)
        return torch.exp(log_all_zero + h @ bit_patterns(h.shape[-1]).double().T)

    p = half(x[:, :a]).T @ half(x[:, a:]) / x.shape[0]
    return -(p * p.clamp_min(1e-300).log()).sum()


def value_and_grad(fn, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = logits.clone().requires_grad_()
    value = fn(x)
    value.backward()
    return value.detach().double(), x.grad.double()


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 7, 10])
@pytest.mark.parametrize("scale", [0.5, 3.0, 30.0])
def test_gradient_matches_brute_force_softmax(d, scale):
    torch.manual_seed(d)
    logits = torch.randn(37, d) * scale
    value, grad = value_and_grad(exact_code_entropy, logits)
    ref_value, ref_grad = value_and_grad(brute_force_batch_entropy, logits.double())
    assert value.item() == pytest.approx(ref_value.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-5 * ref_grad.abs().max().item() + 1e-9)


def test_value_and_gradient_at_dim_18_match_float64():
    # Hard assignments (LFQ's default τ = 0.01 on z ~ 0.1 · N(0, 1)): most probabilities hit the floors.
    torch.manual_seed(18)
    logits = torch.randn(2048, 18) * 40
    value, grad = value_and_grad(exact_code_entropy, logits)
    ref_value, ref_grad = value_and_grad(factorized_float64_entropy, logits.double())
    assert value.item() == pytest.approx(ref_value.item(), rel=1e-5)
    assert ((grad - ref_grad).norm() / ref_grad.norm()).item() < 1e-4


@pytest.mark.parametrize("d", [3, 10, 18])
def test_chunked_tokens_give_the_unchunked_result(d, monkeypatch):
    torch.manual_seed(0)
    logits = torch.randn(75, d) * 2
    whole, whole_grad = value_and_grad(exact_code_entropy, logits)
    monkeypatch.setattr(entropy, "_CPU_CHUNK_ELEMENTS", 4 * 2 ** ((d + 1) // 2))  # chunks of 4 rows, last one 3
    chunked, chunked_grad = value_and_grad(exact_code_entropy, logits)
    assert chunked.item() == pytest.approx(whole.item(), rel=1e-6)
    # float32 sums in another order: differences at rounding level, a wrong chunk would be O(1)
    torch.testing.assert_close(chunked_grad, whole_grad, rtol=1e-4, atol=3e-5 * whole_grad.abs().max().item())


def test_backward_inside_bf16_autocast_stays_float32():
    # Lightning calls manual_backward inside the autocast region: the analytic backward must not run in bf16.
    torch.manual_seed(0)
    logits = torch.randn(300, 12) * 3
    _, reference = value_and_grad(exact_code_entropy, logits)
    x = logits.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        exact_code_entropy(x).backward()
    assert x.grad.dtype == torch.float32
    torch.testing.assert_close(x.grad, reference.float(), rtol=1e-6, atol=0)


def test_input_dtype_and_device_of_the_gradient():
    logits = (torch.randn(20, 6) * 2).double().requires_grad_()
    exact_code_entropy(logits).backward()
    assert logits.grad.dtype == torch.float64 and torch.isfinite(logits.grad).all()


def test_autograd_functions_never_edit_their_inputs():
    # Regression: _FlooredExp clamped and exponentiated its input in place without ctx.mark_dirty.
    functions = [f for f in vars(entropy).values() if isinstance(f, type) and issubclass(f, torch.autograd.Function)]
    assert functions
    for function in functions:
        x = torch.randn(9, 6) * 50
        before = x.clone()
        function.apply(x)
        assert torch.equal(x, before), function.__name__


def test_grouped_entropy_is_the_sum_of_exact_group_entropies():
    torch.manual_seed(3)
    logits = torch.randn(50, 11) * 2
    groups = [exact_code_entropy(g) for g in logits.split(4, dim=-1)]
    assert grouped_code_entropy(logits, 4).item() == pytest.approx(sum(g.item() for g in groups), rel=1e-6)
    ref = sum(brute_force_batch_entropy(g).item() for g in logits.split(4, dim=-1))
    assert grouped_code_entropy(logits, 4).item() == pytest.approx(ref, rel=1e-5)


def test_every_token_on_every_code_gives_ln_k():
    d = 10
    logits = (bit_patterns(d) * 2 - 1) * 60  # one token on each corner, near-hard
    assert exact_code_entropy(logits).item() == pytest.approx(d * math.log(2), abs=1e-4)


def test_no_tokens_is_an_error():
    with pytest.raises(ValueError, match="at least one token"):
        exact_code_entropy(torch.zeros(0, 8))
