"""The contract every registered LightningModule keeps (``lfq_kit.registry.MODELS``; timm's habit of testing every
registered model): it builds on CPU, takes a training step, skips a step whose loss is not finite (weights
unchanged, counted), trains under bf16-mixed, round-trips through a checkpoint, logs no unsynced figure under a
process group, and accepts ``compile``. Small constructors: tests/helpers/small_models.py."""

import functools
import warnings

import lightning as L
import pytest
import torch
from process_group import process_group  # noqa: F401  (fixture)
from quiet_trainer import quiet_trainer
from small_models import SMALL_MODELS, small_model
from torch import nn

import lfq_kit.models  # noqa: F401  (registers the built-in models)
from lfq_kit.registry import MODELS

PREDICT_ONLY = {"TokenizeClips"}  # writes token shards in `lfq-kit predict`; trains nothing (tests/test_mlm_configs.py)
NAMES = sorted(set(MODELS.names()) - PREDICT_ONLY)


_trainer = functools.partial(quiet_trainer, devices=1, max_steps=1, limit_val_batches=0, num_sanity_val_steps=2)


def _step(tmp_path, name: str, **trainer_kwargs) -> tuple[L.LightningModule, L.Trainer, list[torch.Tensor]]:
    """One optimizer step of each of the model's optimizers; returns the model, its trainer and the weights before."""
    model = small_model(name)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = _trainer(tmp_path, max_steps=getattr(model, "steps_per_batch", 1), **trainer_kwargs)
    trainer.fit(model, SMALL_MODELS[name].train_data())
    return model, trainer, before


def test_every_registered_model_has_a_small_constructor():
    assert NAMES == sorted(SMALL_MODELS) and PREDICT_ONLY <= set(MODELS.names())
    assert {"VideoTokenizer", "MaskedLM", "VideoMAEPretraining", "VideoClassifier"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_one_training_step_on_cpu_changes_the_weights(tmp_path, name):
    model, trainer, before = _step(tmp_path, name)
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    assert trainer.callback_metrics["train/nonfinite_skipped"] == 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))


@pytest.mark.parametrize("name", NAMES)
def test_a_non_finite_loss_skips_the_step_and_is_counted(tmp_path, name, monkeypatch):
    model = small_model(name)
    guard = model.nonfinite_guard
    observe = guard.observe
    monkeypatch.setattr(guard, "observe", lambda slot, loss: observe(slot, loss * float("nan")))
    before = [p.detach().clone() for p in model.parameters()]
    trainer = _trainer(tmp_path, max_steps=getattr(model, "steps_per_batch", 1))
    trainer.fit(model, SMALL_MODELS[name].train_data())
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert guard.skipped == len(guard.names) and guard.in_a_row == [1] * len(guard.names)
    assert trainer.callback_metrics["train/nonfinite_skipped"] == guard.skipped


@pytest.mark.parametrize("name", NAMES)
def test_a_bf16_mixed_step_keeps_float32_finite_weights(tmp_path, name):
    model, trainer, before = _step(tmp_path, name, precision="bf16-mixed")
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert trainer.callback_metrics["train/nonfinite_skipped"] == 0


@pytest.mark.parametrize("name", NAMES)
def test_a_checkpoint_loads_back_equal(tmp_path, name):
    model, trainer, _ = _step(tmp_path, name)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    loaded = type(model).load_from_checkpoint(tmp_path / "model.ckpt", **SMALL_MODELS[name].parts())
    assert dict(loaded.hparams) == dict(model.hparams)
    mine, theirs = model.state_dict(), loaded.state_dict()
    assert sorted(mine) == sorted(theirs)
    for key, value in mine.items():
        assert torch.equal(value, theirs[key]), key


@pytest.mark.parametrize("name", NAMES)
def test_training_and_validation_log_no_unsynced_figure(tmp_path, name, process_group):  # noqa: F811
    model = small_model(name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _trainer(tmp_path, use_distributed_sampler=False).fit(model, SMALL_MODELS[name].train_data())
        trainer = _trainer(tmp_path, use_distributed_sampler=False, limit_val_batches=None)
        trainer.validate(model, SMALL_MODELS[name].val_data(), verbose=False)
    assert [str(w.message) for w in caught if "sync_dist" in str(w.message)] == []
    assert trainer.callback_metrics and all(torch.isfinite(v) for v in trainer.callback_metrics.values())


@pytest.mark.parametrize("name", NAMES)
def test_the_compile_flag_compiles_once_in_configure_model(name, monkeypatch):
    compiled = []
    monkeypatch.setattr(nn.Module, "compile", lambda self, *args, **kwargs: compiled.append(self))
    model = small_model(name, compile=True)
    assert model.hparams.compile is True
    model.configure_model()
    model.configure_model()  # Lightning may call it again (e.g. validate after fit): compiled once
    assert compiled and len(compiled) == len({id(m) for m in compiled})
    assert all(any(m is sub for sub in model.modules()) for m in compiled)
    compiled.clear()
    small_model(name).configure_model()
    assert compiled == []
