"""The contract every registered quantizer keeps (shapes, dtypes, round trip, gradients, checkpoints)."""

import pytest
import torch
from small_quantizers import BUILTIN, SMALL_QUANTIZERS, make

from lfq_kit.quantizers import QuantizerOutput
from lfq_kit.registry import QUANTIZERS

SPATIAL = [(), (7,), (4, 5), (3, 4, 5)]


def test_every_builtin_quantizer_is_covered():
    assert set(BUILTIN) == set(SMALL_QUANTIZERS)


@pytest.mark.parametrize("spatial", SPATIAL, ids=str)
@pytest.mark.parametrize("name", BUILTIN)
def test_shapes_dtypes_and_ranges(name, spatial):
    q = make(name)
    z = torch.randn(2, q.dim, *spatial)
    out = q(z)
    assert isinstance(out, QuantizerOutput)
    assert out.quantized.shape == z.shape and out.quantized.dtype == z.dtype
    assert out.indices.shape == (2, *spatial) and out.indices.dtype == torch.int64
    assert out.indices.min() >= 0 and out.indices.max() < q.codebook_size
    assert out.loss.shape == () and out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    for key, value in out.metrics.items():
        assert value.shape == () and not value.requires_grad and torch.isfinite(value), key


@pytest.mark.parametrize("name", BUILTIN)
def test_eval_round_trip_is_exact(name):
    q = make(name)
    q(torch.randn(4, q.dim, 64))  # one training step first (EMA / dead-code updates must not break it)
    q.eval()
    z = torch.randn(2, q.dim, 3, 4, 4)
    out = q(z)
    assert torch.equal(out.quantized, q.indices_to_codes(out.indices).to(z.dtype))


@pytest.mark.parametrize("name", BUILTIN)
def test_gradients_reach_the_input(name):
    q = make(name)
    z = torch.randn(2, q.dim, 6, requires_grad=True)
    out = q(z)
    (out.quantized.square().sum() + out.loss).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", BUILTIN)
def test_half_precision_inputs(name, dtype):
    q = make(name)
    z = torch.randn(2, q.dim, 5, 5).to(dtype)
    out = q(z)
    ref = q(z.float())
    assert out.quantized.dtype == dtype
    assert torch.equal(out.indices, ref.indices)
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("name", BUILTIN)
def test_bf16_autocast(name):
    q = make(name)
    z = torch.randn(2, q.dim, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(z)
    assert out.quantized.dtype == torch.float32 and torch.isfinite(out.loss)


@pytest.mark.parametrize("name", BUILTIN)
def test_wrong_channel_count_names_the_expected_shape(name):
    q = make(name)
    with pytest.raises(ValueError, match=rf"\(B, {q.dim}, \*S\)"):
        q(torch.randn(2, q.dim + 1, 4))


@pytest.mark.parametrize("name", BUILTIN)
def test_state_dict_round_trip_is_strict_and_exact(name):
    q = make(name)
    q.set_step(123)
    q(torch.randn(4, q.dim, 32))
    fresh = make(name)
    fresh.load_state_dict(q.state_dict(), strict=True)
    assert fresh.step.item() == 123
    z = torch.randn(2, q.dim, 9)
    q.eval(), fresh.eval()
    a, b = q(z), fresh(z)
    assert torch.equal(a.quantized, b.quantized) and torch.equal(a.loss, b.loss)


@pytest.mark.parametrize("name", BUILTIN)
def test_first_argument_is_the_channel_count(name):
    # Models build quantizers as `quantizer(encoder.out_channels)` (jsonargparse Callable[[int], Quantizer]).
    q = QUANTIZERS.get(name)(6)
    assert q.dim == 6
    assert q(torch.randn(1, 6, 3)).quantized.shape == (1, 6, 3)


@pytest.mark.parametrize(
    "name, kwargs", [("VQ", {"dim": 6, "codebook_size": 32, "codebook_dim": 3}), ("FSQ", {"dim": 6, "levels": [3, 4]})]
)
def test_projections_work_in_a_module_cast_to_bf16(name, kwargs):
    # precision="bf16-true" casts every parameter to bf16; the float32 projections must not mix dtypes.
    q = QUANTIZERS.get(name)(**kwargs).to(torch.bfloat16)
    z = torch.randn(2, 6, 5, dtype=torch.bfloat16, requires_grad=True)
    out = q(z)
    (out.quantized.float().square().sum() + out.loss).backward()
    assert out.quantized.dtype == torch.bfloat16 and torch.isfinite(out.loss)
    assert q.project_in.weight.grad is not None and q.project_in.weight.grad.dtype == torch.bfloat16
    q.eval()
    out = q(z.detach())
    assert torch.equal(out.quantized, q.indices_to_codes(out.indices).to(torch.bfloat16))
