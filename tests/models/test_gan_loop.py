"""The tokenizer's GAN loop by value: lazy R1 cadence and scale, LeCAM and R1 weights in the discriminator
loss, and a generator step that leaves the discriminator's weights untouched."""

import functools

import pytest
import torch
import torch.nn.functional as F
from quiet_trainer import quiet_trainer
from tiny_tokenizer import RandomClipData, RandomClips, tiny_tokenizer

import lfq_kit.models.tokenizer as tokenizer_module

trainer = functools.partial(quiet_trainer, limit_val_batches=0)


def test_discriminator_loss_is_recomputed_by_hand_from_the_logits():
    model = tiny_tokenizer(r1_weight=3.0, r1_every=4, lecam_weight=0.5, lecam_decay=0.9)
    disc = model.discriminator
    real, fake = RandomClips(2, seed=3).videos, RandomClips(2, seed=4).videos

    def expected(with_r1: bool) -> torch.Tensor:
        ema_real, ema_fake = model.lecam.ema_real.clone(), model.lecam.ema_fake.clone()
        x = real.clone().requires_grad_(True)
        real_logits, fake_logits = disc(x), disc(fake)
        loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        lecam = F.relu(real_logits - ema_fake).pow(2).mean() + F.relu(ema_real - fake_logits).pow(2).mean()
        loss = loss + 0.5 * lecam
        if with_r1:
            (grad,) = torch.autograd.grad(real_logits.sum(), x, create_graph=True)
            loss = loss + 3.0 * 4 * grad.pow(2).sum(dim=(1, 2, 3, 4)).mean()
        return loss.detach(), real_logits.detach().mean(), fake_logits.detach().mean()

    model.lecam.ema_real.fill_(0.7)
    model.lecam.ema_fake.fill_(-0.4)  # nonzero EMAs: LeCAM is not the plain squared logits
    for step, with_r1 in ((8, True), (9, False)):
        want, real_mean, fake_mean = expected(with_r1)
        ema_before = model.lecam.ema_real.clone()
        logs = {}
        got = model._discriminator_loss(real, fake, step, logs)
        assert got.item() == pytest.approx(want.item(), rel=1e-5)
        assert ("train/r1" in logs) == with_r1
        # LeCAM uses the EMAs from before this step; the step's logits are kept for the optimizer step's update
        assert model.lecam.ema_real.item() == ema_before.item()
        assert model._lecam_logits[-1][0].mean().item() == pytest.approx(real_mean.item(), rel=1e-6)
    assert want.item() != pytest.approx(F.softplus(-disc(real)).mean().item() + F.softplus(disc(fake)).mean().item())


def test_r1_runs_every_r1_every_generator_steps_and_enters_scaled(tmp_path, monkeypatch):
    model = tiny_tokenizer(disc_start=0, r1_every=3, r1_weight=2.0, lecam_weight=0.25, ema_decay=None)
    r1_calls, base, lecams, disc_losses = {}, {}, {}, {}
    r1_penalty, discriminator_loss = tokenizer_module.r1_penalty, tokenizer_module.discriminator_loss

    def spy_r1(logits, inputs):
        r1_calls[model.generator_step] = value = r1_penalty(logits, inputs)
        return value

    def spy_loss(real_logits, fake_logits):
        base[model.generator_step] = value = discriminator_loss(real_logits, fake_logits)
        return value

    lecam_forward = model.lecam.forward

    def spy_lecam(real_logits, fake_logits):
        lecams[model.generator_step] = value = lecam_forward(real_logits, fake_logits)
        return value

    disc_loss_fn = model._discriminator_loss

    def spy_disc_loss(real, fake, step, logs):
        value = disc_loss_fn(real, fake, step, logs)
        disc_losses[step] = value.detach().clone()
        return value

    monkeypatch.setattr(tokenizer_module, "r1_penalty", spy_r1)
    monkeypatch.setattr(tokenizer_module, "discriminator_loss", spy_loss)
    monkeypatch.setattr(model.lecam, "forward", spy_lecam)
    monkeypatch.setattr(model, "_discriminator_loss", spy_disc_loss)
    trainer(tmp_path, max_steps=2 * 7).fit(model, RandomClipData())

    assert sorted(r1_calls) == [0, 3, 6]  # generator steps 0..6, every 3rd
    assert sorted(disc_losses) == list(range(7))
    for step, loss in disc_losses.items():
        r1 = 2.0 * 3 * r1_calls[step] if step in r1_calls else 0.0
        assert loss.item() == pytest.approx((base[step] + 0.25 * lecams[step] + r1).item(), rel=1e-5), step
    assert all(r1_calls[s] > 0 for s in r1_calls)


def test_the_generator_step_leaves_the_discriminator_untouched(tmp_path, monkeypatch):
    model = tiny_tokenizer(disc_start=0, r1_every=1)
    disc = model.discriminator
    changed = []
    apply_step = model._apply_step

    def grads():
        return [None if p.grad is None else p.grad.clone() for p in disc.parameters()]

    def spy_step(index, ok):
        before, grads_before = {k: v.clone() for k, v in disc.state_dict().items()}, grads()
        apply_step(index, ok)
        same = all(torch.equal(before[k], v) for k, v in disc.state_dict().items())
        if index == 0:
            assert same, "the generator's step changed the discriminator"
            for g0, g1 in zip(grads_before, grads()):  # no gradient reached it either
                assert (g0 is None and g1 is None) or torch.equal(g0, g1)
            assert all(p.requires_grad for p in disc.parameters())  # and it trains again afterwards
        else:
            changed.append(not same)

    monkeypatch.setattr(model, "_apply_step", spy_step)
    trainer(tmp_path, max_steps=2 * 3).fit(model, RandomClipData())
    assert changed == [True, True, True]  # the discriminator's own step does update it
