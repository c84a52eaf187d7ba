"""``precision: bf16-mixed`` on CPU (issue 13): the tokenizer (with accumulation and its GAN) and the masked LM train
under autocast, and LFQ's loss terms stay float32 math whatever the autocast state."""

import functools

import pytest
import torch
from quiet_trainer import quiet_trainer
from random_tokens import RandomTokens
from tiny_tokenizer import RandomClipData, tiny_tokenizer

from lfq_kit.backbones.transformer import TransformerTiny
from lfq_kit.models.masked_lm import MaskedLM
from lfq_kit.quantizers import LFQ

trainer = functools.partial(quiet_trainer, limit_val_batches=0)


def test_lfq_loss_is_float32_math_under_bf16_autocast():
    lfq = LFQ(10)
    z = torch.randn(2, 10, 3, 4, 4)
    plain = lfq(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        auto = lfq(z)
        from_bf16 = lfq(z.bfloat16())
    assert auto.loss.dtype == torch.float32 and from_bf16.loss.dtype == torch.float32
    assert torch.equal(auto.loss, plain.loss)  # nothing in it ran in bf16
    for key, value in plain.metrics.items():
        assert torch.equal(auto.metrics[key], value), key
    assert torch.equal(from_bf16.indices, lfq(z.bfloat16().float()).indices)


def test_tokenizer_trains_under_bf16_mixed_with_accumulation_and_the_gan(tmp_path):
    torch.manual_seed(0)
    model = tiny_tokenizer(disc_start=0, r1_every=1, accumulate_grad_batches=2)
    before = [p.detach().clone() for p in model.generator.parameters()]
    t = trainer(tmp_path, max_steps=2 * 2, precision="bf16-mixed")
    t.fit(model, RandomClipData())
    assert t.callback_metrics["train/nonfinite_skipped"] == 0
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())  # fp32 masters
    assert any(not torch.equal(a, p) for a, p in zip(before, model.generator.parameters()))
    for key in ("train/loss", "train/discriminator", "train/r1"):
        assert torch.isfinite(t.callback_metrics[key]), key


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_masked_lm_trains_under_bf16_mixed_from_the_uniform_loss(tmp_path, precision, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")  # same masks in both precisions
    torch.manual_seed(0)
    model = MaskedLM(
        TransformerTiny(dropout=0.0, attn_dropout=0.0),
        grid=(2, 2, 4),
        codebook_size=2**18,
        num_classes=0,
        warmup_steps=0,
    )
    losses = []
    step = model.training_step
    monkeypatch.setattr(model, "training_step", lambda batch, i=0: losses.append(step(batch, i)) or losses[-1])
    trainer(tmp_path, max_steps=2, precision=precision).fit(model, RandomTokens(count=4, batch_size=4))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # initial loss ≈ ln 2^18 nats (uniform over the vocabulary), in either precision
    assert losses[0].item() == pytest.approx(18 * 0.6931, rel=0.02)
    assert losses[0].dtype == torch.float32
