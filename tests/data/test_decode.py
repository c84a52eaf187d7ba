"""PyAV probing and clip reads: header facts, frame-exact seeking against a naive full decode, bad files."""

import pickle

import av
import numpy as np
import pytest
import torch
from video_fixtures import FRAMES, decode_all, remux_to_ts, sample_clip

from lfq_kit.data import VideoDecodeError, probe_video, read_frames

# Sorted windows, windows starting mid-GOP and across keyframes (GOP 12), strided, unsorted with repeats
# (what the loop policy produces), the first and last frame. In the B-frame AVI, seeks to frames 9-11 and
# 21-23 land on the next keyframe (after the frame), so those starts test the decode-from-start fallback.
INDEX_SETS = [
    list(range(0, 17)),
    list(range(5, 22)),
    list(range(10, 27)),
    [21, 22, 23],
    list(range(19, 36)),
    list(range(13, 36, 3)),
    [30, 2, 2, 17, 35, 0, 30],
    [0],
    [FRAMES - 1],
]


def test_probe_reads_header_facts_of_the_real_sample_clips():
    expected = {
        "bikes.mp4": (250, 25.0, 640, 272),
        "bigbuckbunny.mp4": (132, 25.0, 1280, 720),
        "carphone_pristine.mp4": (120, 30000 / 1001, 176, 144),
    }
    for name, (frames, fps, width, height) in expected.items():
        info = probe_video(sample_clip(name))
        assert (info.num_frames, info.width, info.height, info.codec) == (frames, width, height, "h264")
        assert info.fps == pytest.approx(fps)
        assert info.start_pts == 0


def test_probe_of_ucf_format_files(ucf_tree):
    plain = probe_video(ucf_tree.root / "UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi")
    assert (plain.num_frames, plain.fps, plain.width, plain.height, plain.codec) == (FRAMES, 25.0, 320, 240, "mpeg4")
    assert plain.start_pts == 0
    b_frames = probe_video(ucf_tree.root / "UCF-101/Biking/v_Biking_g01_c01.avi")
    assert (b_frames.num_frames, b_frames.start_pts) == (FRAMES, 1)  # AVI with B-frames starts at pts 1


@pytest.mark.parametrize("video", ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi", "Biking/v_Biking_g01_c01.avi"])
def test_seeking_returns_the_frames_of_a_naive_full_decode(ucf_tree, video):
    path = ucf_tree.root / "UCF-101" / video
    reference = decode_all(path)
    start_pts = probe_video(path).start_pts
    for indices in INDEX_SETS:
        clip = read_frames(path, indices, start_pts=start_pts)
        assert clip.dtype == torch.uint8 and clip.shape == (len(indices), 240, 320, 3)
        assert np.array_equal(clip.numpy(), reference[indices]), indices
        # Without start_pts it decodes from the start: same frames.
        assert np.array_equal(read_frames(path, indices).numpy(), reference[indices])


def test_seeking_in_h264_mp4_with_several_keyframes():
    path = sample_clip("bikes.mp4")  # keyframes at frames 0, 30, 76, 137, 187, 242
    reference = decode_all(path)
    for indices in ([28, 29, 30, 31], list(range(70, 140, 5)), [249, 0, 137]):
        assert np.array_equal(read_frames(path, indices, start_pts=0).numpy(), reference[indices])


@pytest.mark.parametrize("name, frames, keyframes", [("carphone_pristine.mp4", 120, 1), ("bikes.mp4", 250, 6)])
def test_mpeg_ts_probes_the_true_frame_count_and_seeks_exactly(tmp_path, name, frames, keyframes):
    # Regression: a TS remux of carphone (one keyframe) probed as 1 frame, and its clip reads failed.
    path = tmp_path / f"{name}.ts"
    remux_to_ts(sample_clip(name), path)
    with av.open(str(path)) as container:  # the header really lacks a frame count
        stream = container.streams.video[0]
        first_pts = next(container.decode(stream)).pts
        assert stream.frames == 0 and container.format.name == "mpegts"
    with av.open(str(path)) as container:
        assert sum(p.is_keyframe for p in container.demux(video=0)) == keyframes
    reference = decode_all(path)
    assert len(reference) == frames
    info = probe_video(path)
    assert (info.num_frames, info.width, info.height, info.codec) == (frames, *reference.shape[2:0:-1], "h264")
    assert info.start_pts == first_pts > 0  # TS timestamps start after the mux delay
    for indices in ([0], [frames - 1], list(range(28, 45)), list(range(frames - 17, frames)), [90, 3, 3, 31]):
        clip = read_frames(path, indices, start_pts=info.start_pts)
        assert np.array_equal(clip.numpy(), reference[indices]), indices


def test_bad_files_raise_naming_the_file_and_the_reason(ucf_tree, tmp_path):
    videos = ucf_tree.root / "UCF-101"
    reasons = {"empty": "empty file", "truncated": "truncated", "text": "Invalid data"}
    for rel, kind in ucf_tree.bad.items():
        if kind == "corrupt frames":
            continue
        with pytest.raises(VideoDecodeError, match=reasons[kind]) as err:
            probe_video(videos / rel)
        assert err.value.path == str(videos / rel) and str(videos / rel) in str(err.value)
    with pytest.raises(VideoDecodeError, match="No such file"):
        probe_video(tmp_path / "missing.avi")
    with pytest.raises(VideoDecodeError, match="Invalid data"):
        read_frames(videos / "JumpRope/v_JumpRope_g03_c01.avi", [0])


def test_unreadable_frame_passes_the_probe_but_fails_the_clip(ucf_tree):
    path = ucf_tree.root / "UCF-101" / ucf_tree.corrupt_frames
    info = probe_video(path)  # frames 0 and 24-35 decode
    assert info.num_frames == FRAMES
    assert read_frames(path, range(24, 36), info.start_pts).shape[0] == 12
    with pytest.raises(VideoDecodeError, match="Invalid data") as err:
        read_frames(path, range(2, 19), info.start_pts)
    assert str(path) in str(err.value)


def test_reading_past_the_end_raises(ucf_tree):
    path = ucf_tree.root / "UCF-101" / ucf_tree.short
    with pytest.raises(VideoDecodeError, match="before requested frame 12"):
        read_frames(path, [10, 11, 12])


def test_invalid_indices():
    for bad in ([], [-1, 2], [[0, 1]]):
        with pytest.raises(ValueError, match="frame indices"):
            read_frames(sample_clip("bikes.mp4"), bad)


def test_decode_error_survives_pickling():
    err = pickle.loads(pickle.dumps(VideoDecodeError("/x/a.avi", "broken")))
    assert (err.path, err.reason, str(err)) == ("/x/a.avi", "broken", "cannot read video /x/a.avi: broken")
    assert isinstance(err, RuntimeError)
