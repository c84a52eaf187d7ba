"""The in-memory frame cache: one-pass decodes equal a full decode, each video is decoded once per process,
cached clips equal uncached ones (up to the documented resize-then-crop difference), bad videos are skipped."""

import pickle

import numpy as np
import pytest
import torch
from video_fixtures import FRAMES, decode_all

from lfq_kit.data import (
    FrameCache,
    SampleClipsDataModule,
    SkippedVideoWarning,
    VideoClipDataset,
    VideoItem,
    build_manifest,
    probe_video,
    read_video,
)
from lfq_kit.data import frame_cache as frame_cache_module
from lfq_kit.data.frame_cache import resize_short_side

PLAIN = "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
B_FRAMES = "UCF-101/Biking/v_Biking_g01_c01.avi"  # AVI timestamps start at 1


@pytest.fixture
def entries(ucf_tree, tmp_path):
    return build_manifest(ucf_tree.root, [VideoItem(PLAIN, 0), VideoItem(B_FRAMES, 1)], "ucf101", tmp_path)


def test_read_video_equals_a_full_decode(ucf_tree, kinetics_tree):
    for path in (ucf_tree.root / PLAIN, ucf_tree.root / B_FRAMES, kinetics_tree.root / kinetics_tree.train[0][0]):
        info = probe_video(path)
        reference = decode_all(path)
        assert np.array_equal(read_video(path, info.num_frames, info.start_pts).numpy(), reference)
        # Mapped frame by frame; decoding stops after num_frames.
        small = read_video(path, 5, info.start_pts, map_frame=lambda rgb: resize_short_side(rgb, 24))
        assert small.shape == (5, 24, round(24 * reference.shape[2] / reference.shape[1]), 3)
        assert small.dtype == torch.uint8


def test_cached_center_clip_equals_the_uncached_clip(entries):
    # 320×240 at resolution 120 (or 36) scales both sides by 1/2 (3/20), so the crop offsets line up exactly:
    # the clips are equal except in the crop's two edge columns on each side, where the uncached path's filter
    # sees only the crop and the cache's sees beyond it.
    for resolution in (120, 36):
        kwargs = dict(frames_per_clip=9, resolution=resolution, sampling="uniform", clips_per_video=3, train=False)
        plain, cached = VideoClipDataset(entries, **kwargs), VideoClipDataset(entries, cache_frames=True, **kwargs)
        for i in range(len(plain)):
            a, b = plain[i], cached[i]
            assert torch.equal(a["frame_indices"], b["frame_indices"]) and a["label"] == b["label"]
            assert torch.equal(a["video"][..., 2:-2], b["video"][..., 2:-2])
            assert (a["video"] - b["video"]).abs().mean() < 1 / 255
    # Unaligned (50: a crop offset of 8.33 resized pixels without the cache, 8 with it): a third of a pixel's
    # shift, which on these sharp frames moves values by about 7/255 on average.
    kwargs["resolution"] = 50
    plain, cached = VideoClipDataset(entries, **kwargs), VideoClipDataset(entries, cache_frames=True, **kwargs)
    for i in range(len(plain)):
        assert (plain[i]["video"] - cached[i]["video"]).abs().mean() < 0.08


def test_each_video_is_decoded_once_per_process(entries, monkeypatch):
    calls = []
    real = frame_cache_module.read_video
    monkeypatch.setattr(
        frame_cache_module, "read_video", lambda path, *a, **k: calls.append(path) or real(path, *a, **k)
    )
    ds = VideoClipDataset(
        entries, frames_per_clip=17, resolution=32, sampling="constant", clips_per_epoch=12, cache_frames=True
    )
    clips = [ds[i] for i in range(12)]
    assert sorted(calls) == sorted(e.path for e in entries)  # 12 clips, 2 decodes
    assert {tuple(c["video"].shape) for c in clips} == {(3, 17, 32, 32)}
    assert len({c["frame_indices"][0].item() for c in clips}) > 1  # random starts still vary
    cache = ds.frame_cache
    assert len(cache) == 2 and cache.nbytes == 2 * FRAMES * 32 * 43 * 3  # 320×240 → 43×32
    # A new process (pickled dataset) starts empty and fills its own cache.
    clone = pickle.loads(pickle.dumps(ds))
    assert len(clone.frame_cache) == 0 and clone.frame_cache.resolution == 32
    assert isinstance(FrameCache(8), FrameCache) and len(FrameCache(8)) == 0


def test_a_video_with_corrupt_frames_is_skipped_as_a_whole(ucf_tree, tmp_path):
    items = [VideoItem(f"UCF-101/{ucf_tree.corrupt_frames}", 0), VideoItem(PLAIN, 0)]
    entries = build_manifest(ucf_tree.root, items, "ucf101", tmp_path)
    ds = VideoClipDataset(entries, frames_per_clip=5, resolution=16, sampling="random", cache_frames=True)
    sample = ds[0]  # even a clip of frames the corruption does not touch: the whole video is unreadable
    assert sample["skipped"] == [entries[0].path] and sample["index"] == 1
    assert entries[0].path not in ds.frame_cache and entries[1].path in ds.frame_cache


def test_sample_clips_cache_their_training_videos_only(tmp_path):
    dm = SampleClipsDataModule(
        frames_per_clip=5,
        resolution=32,
        batch_size=2,
        clips_per_epoch=2,
        clips_per_video=1,
        manifest_dir=str(tmp_path),
        cache_frames=True,
    )
    assert dm.cache_frames and dm.hparams.cache_frames
    dm.setup("fit")
    assert dm.val_set.frame_cache is None  # validation metrics do not depend on the flag
    batch = next(iter(dm.train_dataloader()))  # clips alternate between the two videos: both get cached
    assert batch["video"].shape == (2, 3, 5, 32, 32) and sorted(batch["label"].tolist()) == [0, 1]
    # bikes.mp4 640×272 → 75×32, bigbuckbunny.mp4 1280×720 → 57×32
    assert dm.train_set.frame_cache.nbytes == (250 * 75 + 132 * 57) * 32 * 3


def test_skips_are_reported_with_cache_too(ucf_tree, tmp_path):
    from lfq_kit.data import UCF101DataModule

    dm = UCF101DataModule(
        str(ucf_tree.root),
        frames_per_clip=5,
        resolution=16,
        batch_size=10,
        num_workers=0,
        manifest_dir=str(tmp_path),
        cache_frames=True,
    )
    with pytest.warns(SkippedVideoWarning):
        dm.setup("fit")
    with pytest.warns(SkippedVideoWarning, match=r"skipped unreadable file .*v_ApplyEyeMakeup_g03_c01\.avi"):
        batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    corrupt = str(ucf_tree.root / "UCF-101" / ucf_tree.corrupt_frames)
    assert dm.skip_log.reasons.keys() == {corrupt} and batch["video"].shape[0] == len(dm.train_set) == 10
