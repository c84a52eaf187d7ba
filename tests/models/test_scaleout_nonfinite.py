"""Non-finite losses (issue 13): the step is skipped (weights, optimizer state, EMA and schedule untouched), counted
in ``train/nonfinite_skipped``, and the run stops after ``max_nonfinite_steps`` in a row; every rank agrees."""

import copy
import functools
import tempfile

import lightning as L
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from quiet_trainer import quiet_trainer
from random_tokens import RandomTokens
from tiny_tokenizer import RandomClipData, tiny_tokenizer
from torch import nn

from lfq_kit.backbones.transformer import TransformerTiny
from lfq_kit.models._nonfinite import NonFiniteGuard, NonFiniteLossError, discard_gradients
from lfq_kit.models.masked_lm import MaskedLM

trainer = functools.partial(quiet_trainer, limit_val_batches=0)


def test_the_guard_counts_skips_resets_on_a_finite_loss_and_raises_after_n_in_a_row():
    guard = NonFiniteGuard(3, ("generator", "discriminator"))
    nan, one = torch.tensor(float("nan")), torch.tensor(1.0)
    for g, d, want in (
        (nan, one, [False, True]),
        (one, torch.tensor([1.0, float("inf")]), [True, False]),
        (nan, one, [False, True]),
        (nan, one, [False, True]),
    ):
        guard.observe(0, g)
        guard.observe(1, d)
        assert guard.decide() == want
    assert guard.skipped == 4 and guard.in_a_row == [2, 0]
    state = guard.state_dict()
    guard.observe(0, nan)
    with pytest.raises(NonFiniteLossError, match=r"generator loss was NaN or infinite in 3 optimizer steps in a row"):
        guard.decide()
    restored = NonFiniteGuard(3, ("generator", "discriminator"))
    restored.load_state_dict(state)
    assert restored.state_dict() == {"skipped": 4, "in_a_row": [2, 0]}
    assert restored.decide() == [True, True]  # nothing observed: nothing to skip
    with pytest.raises(ValueError, match="max_nonfinite_steps must be an integer >= 1"):
        NonFiniteGuard(0)


def test_discarded_gradients_leave_adam_and_the_weights_untouched():
    layer = nn.Linear(3, 2)
    opt = torch.optim.Adam(layer.parameters(), lr=0.1)
    layer(torch.ones(1, 3)).sum().backward()
    opt.step()  # a real step first: state exists
    before, state = copy.deepcopy(layer.state_dict()), copy.deepcopy(opt.state_dict())
    layer(torch.full((1, 3), float("nan"))).sum().backward()
    discard_gradients(opt)
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())
    assert str(opt.state_dict()) == str(state)
    layer(torch.ones(1, 3)).sum().backward()
    discard_gradients(opt, scaled=True)  # a GradScaler will step: NaN makes it skip
    assert all(torch.isnan(p.grad).all() for p in layer.parameters())


class _NaNAt(nn.Module):
    """A "perceptual loss" that is 0, or NaN at the given generator steps of ``model``."""

    def __init__(self, steps) -> None:
        super().__init__()
        self.steps, self.model = set(steps), None

    def forward(self, recon, video):
        bad = self.model.generator_step in self.steps or not self.steps
        return (recon - video).abs().mean() * 0 + (float("nan") if bad else 0.0)


class _Snapshots(L.Callback):
    def __init__(self) -> None:
        self.states = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.states.append(
            {
                "generator": {
                    n: p.detach().clone() for n, p in module.generator.named_parameters()
                },  # not the step buffer
                "ema": copy.deepcopy(module.ema.state_dict()),
                "discriminator": copy.deepcopy(module.discriminator.state_dict()),
                "opt_g": str(trainer.optimizers[0].state_dict()),
                "lr_g": trainer.lr_scheduler_configs[0].scheduler.last_epoch,
                "lr_d": trainer.lr_scheduler_configs[1].scheduler.last_epoch,
            }
        )


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_a_nan_generator_loss_skips_that_step_only(tmp_path):
    nan = _NaNAt({1})
    model = tiny_tokenizer(disc_start=0, ema_decay=0.9, perceptual_loss=nan, perceptual_weight=1.0)
    nan.__dict__["model"] = model  # a plain reference, not a submodule (no cycle)
    snaps = _Snapshots()
    t = trainer(tmp_path, callbacks=[snaps], max_steps=2 * 3)
    t.fit(model, RandomClipData())
    s0, s1, s2 = snaps.states
    assert _same(s0["generator"], s1["generator"]) and _same(s0["ema"], s1["ema"])  # skipped: nothing moved
    assert s0["opt_g"] == s1["opt_g"] and s0["lr_g"] == s1["lr_g"] == 1
    assert not _same(s0["discriminator"], s1["discriminator"]) and s1["lr_d"] == 2  # its loss was finite
    assert not _same(s1["generator"], s2["generator"]) and s2["lr_g"] == 2  # and training goes on
    assert model.global_step == 6  # a skipped step still counts as consumed
    assert t.callback_metrics["train/nonfinite_skipped"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_the_tokenizer_stops_after_max_nonfinite_steps_in_a_row_with_finite_weights(tmp_path):
    nan = _NaNAt(())
    model = tiny_tokenizer(discriminator=False, perceptual_loss=nan, perceptual_weight=1.0, max_nonfinite_steps=2)
    nan.__dict__["model"] = model  # a plain reference, not a submodule (no cycle)
    start = {n: p.detach().clone() for n, p in model.generator.named_parameters()}
    with pytest.raises(NonFiniteLossError, match=r"max_nonfinite_steps=2"):
        trainer(tmp_path, max_steps=10).fit(model, RandomClipData())
    assert _same(start, dict(model.generator.named_parameters()))


def _mlm(**kwargs) -> MaskedLM:
    torch.manual_seed(0)
    return MaskedLM(
        TransformerTiny(dropout=0.0, attn_dropout=0.0),
        grid=(2, 2, 4),
        codebook_size=2**18,
        num_classes=0,
        warmup_steps=0,
        decay_steps=10,
        **kwargs,
    )


@pytest.mark.parametrize("accumulate", [1, 2])
def test_a_nan_masked_lm_loss_skips_the_step_and_its_schedule(tmp_path, monkeypatch, accumulate):
    model = _mlm()
    calls = []
    loss_fn = model.tokens.loss

    def loss(*args):  # the 2nd optimizer step's batches are NaN (with accumulation, its first micro-batch only)
        calls.append(1)
        value = loss_fn(*args)
        return value * float("nan") if len(calls) == 1 + accumulate else value

    monkeypatch.setattr(model.tokens, "loss", loss)

    class Snap(L.Callback):
        def __init__(self) -> None:
            self.states = []

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if (batch_idx + 1) % accumulate == 0:  # after each optimizer step
                self.states.append(
                    (
                        copy.deepcopy(module.state_dict()),
                        str(trainer.optimizers[0].state_dict()),
                        trainer.lr_scheduler_configs[0].scheduler.last_epoch,
                    )
                )

    snap = Snap()
    t = trainer(tmp_path, callbacks=[snap], max_steps=3, accumulate_grad_batches=accumulate)
    t.fit(model, RandomTokens(count=8, batch_size=2))
    (w0, o0, l0), (w1, o1, l1), (w2, _, l2) = snap.states
    assert _same(w0, w1) and o0 == o1 and l0 == l1 == 1  # the 2nd step was skipped, schedule included
    assert not _same(w1, w2) and l2 == 2
    assert model.global_step == 3 and t.callback_metrics["train/nonfinite_skipped"] == 1


def test_the_masked_lm_stops_after_max_nonfinite_steps_in_a_row(tmp_path, monkeypatch):
    model = _mlm(max_nonfinite_steps=2)
    monkeypatch.setattr(model.tokens, "loss", lambda *a: torch.tensor(float("inf"), requires_grad=True))
    start = copy.deepcopy(model.state_dict())
    with pytest.raises(NonFiniteLossError, match="model loss was NaN or infinite in 2 optimizer steps in a row"):
        trainer(tmp_path, max_steps=10).fit(model, RandomTokens(count=8, batch_size=2))
    assert _same(start, model.state_dict())


def _agree(rank: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    guard = NonFiniteGuard(3)
    decisions = []
    for step in range(3):
        bad = rank == 1 and step == 1  # only rank 1 sees a NaN, at step 1
        guard.observe(0, torch.tensor(float("nan") if bad else 1.0))
        decisions.append(guard.decide(lambda t: (dist.all_reduce(t), t)[1])[0])
    with open(f"{out}.{rank}", "w") as f:
        f.write(repr((decisions, guard.skipped)))
    dist.destroy_process_group()


def test_every_rank_skips_when_one_rank_sees_a_nan(tmp_path):
    out = str(tmp_path / "decisions")
    init = f"file://{tempfile.mktemp(dir=tmp_path)}"
    mp.start_processes(_agree, args=(init, out), nprocs=2, start_method="fork")
    assert [open(f"{out}.{r}").read() for r in (0, 1)] == ["([True, False, True], 1)"] * 2
