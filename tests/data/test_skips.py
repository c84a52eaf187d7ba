"""Skip accounting per stage: validation (and the sanity check) never count as training skips."""

from __future__ import annotations

import logging
import warnings
from types import SimpleNamespace

import pytest
from lightning.pytorch.trainer.states import RunningStage
from video_fixtures import TinyVideoAutoencoder, quiet_trainer

from lfq_kit.data import ImageFolderDataModule, SkipLog, SkippedFilesReport, SkippedVideoWarning
from lfq_kit.data.skips import skip_stage


def _batch(*paths: str) -> dict:
    return {"skipped": list(paths), "skip_reasons": [f"bad {p}" for p in paths]}


def test_skip_log_keeps_one_tally_per_stage() -> None:
    skip_log = SkipLog()
    with pytest.warns(SkippedVideoWarning) as caught:
        assert skip_log.update(_batch("a", "b", "a")) == 3  # outside a Trainer: training
        assert skip_log.update(_batch("a", "c"), stage="validate") == 2
        skip_log.update(_batch("c"), stage="test")
    assert [str(w.message) for w in caught] == [
        "skipped unreadable file a: bad a",
        "skipped unreadable file b: bad b",
        "skipped unreadable file c: bad c",
    ]  # once per file, any stage
    assert skip_log.pop_epoch("validate") == {"a": 1, "c": 1}
    assert skip_log.pop_epoch() == {"a": 2, "b": 1}  # training only
    assert skip_log.pop_epoch() == {} and skip_log.pop_epoch("validate") == {}
    assert skip_log.pop_epoch("test") == {"c": 1}
    assert skip_log.total == 6 and skip_log.totals == {"train": 3, "validate": 2, "test": 1}
    with pytest.raises(ValueError, match="skip stage must be one of train, validate, test, predict, got 'val'"):
        skip_log.update(_batch("a"), stage="val")


def test_skip_stage_follows_the_trainers_running_stage() -> None:
    assert skip_stage(None) == "train"
    expected = {
        RunningStage.TRAINING: "train",
        RunningStage.SANITY_CHECKING: "validate",
        RunningStage.VALIDATING: "validate",
        RunningStage.TESTING: "test",
        RunningStage.PREDICTING: "predict",
    }
    for stage, name in expected.items():
        assert skip_stage(SimpleNamespace(state=SimpleNamespace(stage=stage))) == name
    assert skip_stage(SimpleNamespace(state=SimpleNamespace(stage=None))) == "train"


def test_validation_skips_are_reported_as_validation_not_training(image_tree, caplog) -> None:
    # Regression: validation ran inside the training epoch and its skips landed in the training summary.
    dm = ImageFolderDataModule(
        str(image_tree.root), val_dir="val_bad", eval_on_error="skip", resolution=16, batch_size=3, num_workers=0
    )
    report = SkippedFilesReport()
    trainer = quiet_trainer(max_epochs=2, num_sanity_val_steps=1, callbacks=[report])
    caplog.set_level(logging.WARNING, logger="lfq_kit.data.skips")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedVideoWarning)
        trainer.fit(TinyVideoAutoencoder(), datamodule=dm)
    bad_train = {str(image_tree.root / p) for p in image_tree.corrupt_train}
    bad_val = str(image_tree.root / image_tree.corrupt_val)
    # each training epoch draws each unreadable training image at least once (and maybe as a replacement)
    assert len(report.history) == 2 and all(set(epoch) == bad_train for epoch in report.history)
    # sanity check, then one validation per epoch: the truncated image once each, replaced by the next one
    assert report.histories["validate"] == [{bad_val: 1}] * 3
    assert dm.skip_log.totals["validate"] == 3
    assert dm.skip_log.totals["train"] == sum(sum(epoch.values()) for epoch in report.history)
    assert trainer.callback_metrics["data/skipped_clips"] == sum(report.history[-1].values())
    assert trainer.callback_metrics["data/val_skipped_clips"] == 1.0
    summaries = [r.getMessage() for r in caplog.records if "unreadable file(s)" in r.getMessage()]
    training = [s for s in summaries if s.startswith(("epoch 0: ", "epoch 1: "))]
    assert len(training) == 2 and all(bad_val not in s for s in training)
    assert (
        summaries.count(
            f"epoch 0 validation: skipped 1 clip(s) from 1 unreadable file(s)\n"
            f"  {bad_val} (x1): {dm.skip_log.reasons[bad_val]}"
        )
        == 1
    )
    assert any(s.startswith("sanity check: skipped 1 clip(s)") for s in summaries)
