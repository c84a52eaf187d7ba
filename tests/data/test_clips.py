"""The clip dataset: sample layout, bad-file policy in training and evaluation (invariant 14), short clips."""

import pytest
import torch

from lfq_kit.data import (
    SkippedVideoWarning,
    VideoClipDataset,
    VideoDecodeError,
    VideoItem,
    build_manifest,
    collate_clips,
)


@pytest.fixture(scope="module")
def train_entries(ucf_tree, tmp_path_factory):
    items = [VideoItem(f"UCF-101/{p}", label) for p, label in ucf_tree.train1]
    return build_manifest(ucf_tree.root, items, "ucf101", manifest_dir=tmp_path_factory.mktemp("manifest"))


def test_training_leaves_out_known_bad_files_with_one_warning(ucf_tree, train_entries):
    with pytest.warns(SkippedVideoWarning) as record:
        ds = VideoClipDataset(train_entries, frames_per_clip=9, resolution=32)
    assert len(record) == 1
    message = str(record[0].message)
    known_bad = [p for p, kind in ucf_tree.bad.items() if kind != "corrupt frames"]
    assert all(p in message for p in known_bad) and ucf_tree.corrupt_frames not in message
    assert sorted(ds.excluded) == sorted(str(ucf_tree.root / "UCF-101" / p) for p in known_bad)
    assert len(ds) == len(ucf_tree.train1) - 3


def test_training_replaces_a_clip_that_fails_to_decode(ucf_tree, train_entries):
    with pytest.warns(SkippedVideoWarning):
        ds = VideoClipDataset(train_entries, frames_per_clip=17, resolution=32)
    bad = next(i for i, e in enumerate(ds.entries) if e.video_id.endswith(ucf_tree.corrupt_frames))
    sample = ds[bad]
    assert sample["skipped"] == [ds.entries[bad].path] and "Invalid data" in sample["skip_reasons"][0]
    assert sample["index"] != bad and sample["video"].shape == (3, 17, 32, 32)
    clean = ds[(bad + 1) % len(ds)]
    assert clean["skipped"] == [] and clean["skip_reasons"] == []


def test_sample_layout_labels_and_collation(ucf_tree, train_entries):
    good = [e for e in train_entries if e.ok and ucf_tree.corrupt_frames not in e.video_id]
    ds = VideoClipDataset(good, frames_per_clip=5, resolution=48, sampling="uniform", train=False)
    batch = collate_clips([ds[i] for i in range(len(ds))])
    assert batch["video"].shape == (len(ds), 3, 5, 48, 48) and batch["video"].dtype == torch.float32
    assert -1 <= batch["video"].min() and batch["video"].max() <= 1
    assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == [e.label for e in good]
    assert batch["index"].tolist() == list(range(len(ds)))
    assert batch["video_id"] == [e.video_id for e in good]
    assert batch["frame_indices"].shape == (len(ds), 5) and batch["skipped"] == []


def test_evaluation_raises_naming_the_file(ucf_tree, train_entries):
    with pytest.raises(VideoDecodeError, match="v_Biking_g03_c01.avi: empty file.*and 2 more"):
        VideoClipDataset(train_entries, train=False)
    readable = [e for e in train_entries if e.ok]
    ds = VideoClipDataset(readable, frames_per_clip=17, resolution=32, sampling="uniform", train=False)
    bad = next(i for i, e in enumerate(ds.entries) if e.video_id.endswith(ucf_tree.corrupt_frames))
    with pytest.raises(VideoDecodeError, match="v_ApplyEyeMakeup_g03_c01.avi: .*Invalid data"):
        ds[bad]


def test_evaluation_can_skip_deterministically(ucf_tree, train_entries):
    with pytest.warns(SkippedVideoWarning):
        ds = VideoClipDataset(
            train_entries, frames_per_clip=17, resolution=32, sampling="uniform", train=False, on_error="skip"
        )
    bad = next(i for i, e in enumerate(ds.entries) if e.video_id.endswith(ucf_tree.corrupt_frames))
    sample = ds[bad]
    assert sample["index"] == (bad + 1) % len(ds) and len(sample["skipped"]) == 1


def test_retries_are_bounded(ucf_tree, train_entries):
    corrupt = [e for e in train_entries if e.video_id.endswith(ucf_tree.corrupt_frames)]
    ds = VideoClipDataset(corrupt, frames_per_clip=17, resolution=32, max_retries=3)
    with pytest.raises(RuntimeError, match="4 consecutive clips failed"):
        ds[0]


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("lower_stride", list(range(12)) + list(range(5))),  # 12 frames < 17: loop at stride 1
        ("loop", list(range(0, 12, 2)) * 2 + [0, 2, 4, 6, 8]),  # stride 2 kept: frames 0 2 … 10, again
    ],
)
def test_short_video_follows_the_policy(ucf_tree, train_entries, policy, expected):
    short = [e for e in train_entries if e.video_id.endswith(ucf_tree.short)]
    ds = VideoClipDataset(short, frames_per_clip=17, frame_stride=2, resolution=32, short_clip=policy)
    sample = ds[0]
    assert sample["frame_indices"].tolist() == expected and sample["video"].shape == (3, 17, 32, 32)


def test_skip_policy_leaves_out_short_videos(ucf_tree, train_entries):
    readable = [e for e in train_entries if e.ok]
    with pytest.warns(UserWarning, match="shorter than a 17-frame clip") as record:
        ds = VideoClipDataset(readable, frames_per_clip=17, short_clip="skip")
    assert ucf_tree.short in str(record[0].message)
    assert len(ds) == len(readable) - 1
