"""The tokenizer's gradient accumulation (issue 13): k micro-batches of b clips make the same optimizer step as one
batch of k·b clips, with and without the GAN; DDP's no_sync on the non-final micro-batches; the trainer's flag is
refused with a message naming the model's argument."""

import functools
from contextlib import contextmanager

import pytest
import torch
from quiet_trainer import quiet_trainer
from tiny_tokenizer import RandomClipData, RandomClips, tiny_tokenizer
from torch.utils.data import DataLoader

from lfq_kit.quantizers import LFQ

trainer = functools.partial(quiet_trainer, limit_val_batches=0, deterministic=True)


class _Ordered(RandomClipData):
    def train_dataloader(self):  # fixed order: micro-batches [0, 1], [2, 3] make the big batch [0, 1, 2, 3]
        return DataLoader(RandomClips(self.n, self.frames, self.size), batch_size=self.batch_size)


# LFQ's batch entropy is a statistic of the batch, not a mean over clips: off, so k·b and b×k agree exactly.
_LFQ = functools.partial(LFQ, entropy_weight=0.0)
# SGD, not Adam: Adam's update hardly depends on the gradient's scale, so it would not see a missing 1/k.
_SGD = functools.partial(torch.optim.SGD, lr=0.5, momentum=0.9)


def _train(tmp_path, gan: bool, k: int, batch: int):
    torch.manual_seed(0)
    model = tiny_tokenizer(
        discriminator=gan,
        quantizer=_LFQ,
        disc_start=0,
        r1_every=1,
        lecam_weight=0.5,
        ema_decay=0.9,
        accumulate_grad_batches=k,
        gradient_clip_val=None,
        generator_optimizer=_SGD,
        discriminator_optimizer=_SGD,
    )
    steps = 2 * model.steps_per_batch  # two optimizer steps of each network
    t = trainer(tmp_path, max_steps=steps)
    t.fit(model, _Ordered(n=8, batch_size=batch))
    assert model.global_step == steps
    return model, t


@pytest.mark.parametrize("gan", [False, True], ids=["no_gan", "gan"])
def test_two_micro_batches_of_b_equal_one_batch_of_2b(tmp_path, gan):
    big, t_big = _train(tmp_path / "big", gan, k=1, batch=4)
    acc, t_acc = _train(tmp_path / "acc", gan, k=2, batch=2)
    assert t_acc.fit_loop.epoch_loop.total_batch_idx == 3  # 4 micro-batches for 2 optimizer steps
    for (name, a), b in zip(big.state_dict().items(), acc.state_dict().values()):  # weights, EMA, LeCAM
        if a.is_floating_point():
            assert torch.allclose(a, b, atol=1e-5, rtol=0), (name, (a - b).abs().max().item())
    # the steps really moved the weights (a test that compares two untouched models proves nothing)
    torch.manual_seed(0)
    fresh = tiny_tokenizer(discriminator=gan, quantizer=_LFQ)
    delta = max((a - f).abs().max().item() for a, f in zip(acc.generator.parameters(), fresh.generator.parameters()))
    assert delta > 1e-4
    if gan:
        assert big.lecam.ema_real.item() != 0 and big.lecam.ema_real.item() == pytest.approx(
            acc.lecam.ema_real.item(), abs=1e-6
        )
    for oa, ob in zip(t_big.optimizers, t_acc.optimizers):  # momentum buffers too
        for sa, sb in zip(oa.state.values(), ob.state.values()):
            assert torch.allclose(sa["momentum_buffer"], sb["momentum_buffer"], atol=1e-5, rtol=0)
    assert [c.scheduler.last_epoch for c in t_big.lr_scheduler_configs] == [
        c.scheduler.last_epoch for c in t_acc.lr_scheduler_configs
    ]


def test_non_final_micro_batches_back_propagate_under_no_sync(tmp_path):
    torch.manual_seed(0)
    model = tiny_tokenizer(discriminator=True, disc_start=0, accumulate_grad_batches=3, ema_decay=None)
    t = trainer(tmp_path, max_steps=2 * 2)
    entered = []

    @contextmanager
    def block_backward_sync():  # what DDPStrategy provides (DistributedDataParallel.no_sync)
        entered.append(t.fit_loop.epoch_loop.total_batch_idx)
        yield

    t.strategy.block_backward_sync = block_backward_sync
    t.fit(model, RandomClipData(n=12, batch_size=2))
    assert entered == [0, 1, 3, 4]  # batches 2 and 5 end their windows and synchronize


def test_the_trainer_flag_is_refused_naming_the_model_argument(tmp_path):
    model = tiny_tokenizer(discriminator=False)
    t = trainer(tmp_path, max_steps=2, accumulate_grad_batches=2)
    with pytest.raises(ValueError, match=r"model's `accumulate_grad_batches: 2`"):
        t.fit(model, RandomClipData())
    with pytest.raises(ValueError, match="accumulate_grad_batches must be an integer >= 1"):
        tiny_tokenizer(accumulate_grad_batches=0)
