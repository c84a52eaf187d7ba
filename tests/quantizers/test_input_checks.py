"""Bad inputs every quantizer refuses: non-finite latents, empty batches, out-of-range or non-integer ids."""

import pytest
import torch
from small_quantizers import BUILTIN, make

from lfq_kit.quantizers import Quantizer, base
from lfq_kit.registry import QUANTIZERS


def _latent(q: Quantizer, value: float) -> torch.Tensor:
    z = torch.randn(2, q.dim, 3, 4)
    z[1, 0, 2, 3] = value
    return z


# -- non-finite latents ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", BUILTIN)
def test_non_finite_latents_are_refused(name, mode, value):
    # Before: LFQ and BSQ quantized a NaN to index 0 with a NaN loss, FSQ clamped it into range.
    q = make(name).train(mode == "train")
    z = _latent(q, value)
    kind = "1 NaN and 0 Inf" if value != value else "0 NaN and 1 Inf"
    with pytest.raises(ValueError, match=rf"^{name} got a non-finite input: {kind} values"):
        q(z)
    with pytest.raises(ValueError, match=rf"^{name} got a non-finite input"):
        q.quantize_indices(z)


@pytest.mark.parametrize("name", BUILTIN)
def test_non_finite_bf16_latents_are_refused(name):
    q = make(name).eval()
    with pytest.raises(ValueError, match="non-finite"):
        q(_latent(q, float("nan")).bfloat16())


@pytest.mark.parametrize("async_assert", [True, False], ids=["cuda-like", "other-accelerator"])
@pytest.mark.parametrize("name", BUILTIN)
def test_training_on_an_accelerator_checks_finiteness_without_a_sync(name, async_assert, monkeypatch):
    # The training-mode path on an accelerator must neither raise from the host nor read a value back:
    # simulated on CPU, recording what it asks for (on CUDA: one torch._assert_async, checked on device).
    q = make(name).train()
    monkeypatch.setattr(base, "_sync_free_check", lambda z, training: training)
    monkeypatch.setattr(base, "_has_async_assert", lambda device: async_assert)
    asserted = []
    monkeypatch.setattr(torch, "_assert_async", lambda *args: asserted.append(args))
    monkeypatch.setattr(torch.Tensor, "__bool__", lambda self: pytest.fail("host sync on a tensor"))
    monkeypatch.setattr(torch.Tensor, "item", lambda self: pytest.fail("host sync on a tensor"))
    q.check_input(_latent(q, float("nan")))
    q.check_input(_latent(q, 0.5))
    monkeypatch.undo()
    if async_assert:
        assert [(flag.item(), message) for flag, message in asserted] == [
            (False, f"{name}: the input holds NaN or Inf values"),
            (True, f"{name}: the input holds NaN or Inf values"),
        ]
    else:
        assert asserted == []
    q.eval()
    with pytest.raises(ValueError, match="non-finite"):  # eval mode keeps the full check
        q.check_input(_latent(q, float("nan")))


def test_sync_free_check_only_for_training_off_cpu():
    cpu = torch.zeros(1)
    meta = torch.zeros(1, device="meta")
    assert not base._sync_free_check(cpu, True) and not base._sync_free_check(cpu, False)
    assert base._sync_free_check(meta, True) and not base._sync_free_check(meta, False)


# -- empty batches -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0, 5, 4, 4), (2, 0, 4, 4), (2, 5, 4, 0)], ids=str)
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", BUILTIN)
def test_empty_batches_are_refused(name, mode, shape):
    # Before: LFQ, BSQ and VQ returned a NaN loss (means over no tokens).
    q = make(name).train(mode == "train")
    z = torch.randn(shape[0], q.dim, *shape[1:])
    with pytest.raises(ValueError, match=rf"^{name} got an empty batch: input of shape"):
        q(z)
    with pytest.raises(ValueError, match="empty batch"):
        q.quantize_indices(z)


def test_empty_vq_batch_leaves_the_codebook_untouched():
    q = QUANTIZERS.get("VQ")(dim=6, codebook_size=32, ema_update=True, dead_code_threshold=2.0)
    before = {k: v.clone() for k, v in q.state_dict().items()}
    with pytest.raises(ValueError, match="empty batch"):
        q(torch.randn(0, 6, 4))
    assert all(torch.equal(before[k], v) for k, v in q.state_dict().items())


# -- token ids ---------------------------------------------------------------------------------------


def _range_error(name: str, size: int, lo: int, hi: int) -> str:
    return (
        rf"^{name}\.indices_to_codes: token ids must lie in \[0, {size}\) \(codebook_size {size}\), "
        rf"got min {lo} and max {hi}$"
    )


@pytest.mark.parametrize("name", ["LFQ", "BSQ"])
@pytest.mark.parametrize("bad", [16, -1, 2**40 + 3])
def test_sign_quantizers_refuse_ids_that_would_alias(name, bad):
    # Before: at dim 4, 16 decoded as the code of 0, −1 as all +1, 2^40 + 3 as the code of 3.
    q = QUANTIZERS.get(name)(dim=4)
    ids = torch.tensor([[0, bad, 5]])
    with pytest.raises(ValueError, match=_range_error(name, 16, min(0, bad), max(5, bad))):
        q.indices_to_codes(ids)


@pytest.mark.parametrize("name", BUILTIN)
def test_out_of_range_ids_are_refused(name):
    # Before: FSQ wrapped with %, VQ raised a bare IndexError from the embedding.
    q = make(name)
    k = q.codebook_size
    with pytest.raises(ValueError, match=_range_error(name, k, 0, k)):
        q.indices_to_codes(torch.tensor([[0, k], [1, 2]]))
    with pytest.raises(ValueError, match=_range_error(name, k, -3, 1)):
        q.indices_to_codes(torch.tensor([[-3, 1]]))
    # the boundary ids themselves are fine, in any integer dtype that holds them
    assert q.indices_to_codes(torch.tensor([[0, k - 1]])).shape == (1, q.dim, 2)
    for dtype in (torch.int32, torch.int16, torch.uint16):
        assert torch.equal(
            q.indices_to_codes(torch.tensor([[0, k - 1]], dtype=dtype)), q.indices_to_codes(torch.tensor([[0, k - 1]]))
        )


@pytest.mark.parametrize(
    "ids",
    [torch.tensor([[1.7]]), torch.tensor([[1.0]]), torch.tensor([[True, False]]), torch.tensor([[1 + 0j]])],
    ids=["float", "integral-float", "bool", "complex"],
)
@pytest.mark.parametrize("name", BUILTIN)
def test_non_integer_ids_are_refused(name, ids):
    # Before: a float id 1.7 was taken as 1, bools as 0/1.
    with pytest.raises(ValueError, match=rf"^{name}\.indices_to_codes expects integer token ids \(int64\), got dtype"):
        make(name).indices_to_codes(ids)


@pytest.mark.parametrize("ids", [torch.tensor(3), torch.zeros(0, 4, dtype=torch.long)], ids=["0-dim", "empty"])
@pytest.mark.parametrize("name", BUILTIN)
def test_ids_without_tokens_are_refused(name, ids):
    with pytest.raises(ValueError, match=r"expects non-empty \(B, \*S\) ids"):
        make(name).indices_to_codes(ids)


def test_indices_to_codes_of_every_quantizer_calls_the_base_check(monkeypatch):
    # One implementation of the check (Quantizer.check_indices), used by every built-in quantizer.
    calls = []
    monkeypatch.setattr(Quantizer, "check_indices", lambda self, ids: calls.append(type(self).__name__))
    for name in BUILTIN:
        make(name).indices_to_codes(torch.zeros(1, 2, dtype=torch.long))
    assert calls == BUILTIN
