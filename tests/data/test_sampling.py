"""Clip index arithmetic: strides, fps resampling, the short-clip policy (invariant 15) and sampling modes."""

import numpy as np
import pytest
import torch

from lfq_kit.data import ClipSampler
from lfq_kit.data.sampling import clip_offsets, clip_span


def one_video(n, T, stride=1, policy="lower_stride", mode="uniform", fps=25.0, target_fps=None, **kw):
    return ClipSampler(np.array([n]), np.array([fps]), T, stride, target_fps, policy, mode, **kw)


def test_span_and_offsets():
    assert clip_span(17, 1.0) == 17 and clip_span(8, 2.0) == 15 and clip_span(1, 5.0) == 1
    assert clip_offsets(5, 2.5).tolist() == [0, 2, 5, 7, 10]
    assert clip_offsets(4, 1.0).tolist() == [0, 1, 2, 3]


def test_long_enough_video_keeps_the_stride():
    _, idx = one_video(40, 8, stride=2)(0)
    assert idx.tolist() == [12, 14, 16, 18, 20, 22, 24, 26]  # centered: (40 − 15) // 2 = 12


def test_loop_policy_exact_indices():
    assert one_video(10, 8, stride=2, policy="loop")(0)[1].tolist() == [0, 2, 4, 6, 8, 0, 2, 4]
    assert one_video(5, 8, policy="loop")(0)[1].tolist() == [0, 1, 2, 3, 4, 0, 1, 2]


def test_lower_stride_policy_exact_indices():
    # Stride 2 spans 15 > 10 frames; stride 1 spans 8: centered start (10 − 8) // 2 = 1.
    assert one_video(10, 8, stride=2)(0)[1].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    # Stride 4 spans 29 > 20; the largest fitting stride is 2 (span 15), centered start 2.
    assert one_video(20, 8, stride=4)(0)[1].tolist() == [2, 4, 6, 8, 10, 12, 14, 16]
    # Even stride 1 does not fit 5 frames: loop at stride 1.
    assert one_video(5, 8, stride=3)(0)[1].tolist() == [0, 1, 2, 3, 4, 0, 1, 2]


def test_skip_policy_leaves_short_videos_to_the_dataset():
    assert ClipSampler.eligible(np.array([17, 16, 33]), np.array([25.0] * 3), 17, 2).tolist() == [False, False, True]
    with pytest.raises(ValueError, match="shorter than a clip"):
        one_video(16, 17, policy="skip")
    assert len(one_video(17, 17, policy="skip")(0)[1]) == 17


@pytest.mark.parametrize("policy", ["loop", "lower_stride"])
@pytest.mark.parametrize("mode", ["random", "uniform"])
def test_never_a_wrong_length_clip(policy, mode):
    for T in (1, 5, 17):
        for stride in (1, 2, 3):
            for target in (None, 10.0, 40.0):
                num_frames = np.arange(1, 41)
                sampler = ClipSampler(num_frames, np.full(40, 25.0), T, stride, target, policy, mode, clips_per_video=2)
                for i in range(len(sampler)):
                    video, idx = sampler(i)
                    assert idx.shape == (T,) and idx.dtype == np.int64
                    assert 0 <= idx.min() and idx.max() < num_frames[video]


def test_uniform_clips_are_evenly_spaced_and_deterministic():
    sampler = one_video(36, 17, clips_per_video=4)
    starts = [sampler(i)[1][0] for i in range(4)]
    assert starts == [0, 6, 13, 19]  # 19 · j / 3 rounded half up
    assert [sampler(i)[1][0] for i in range(4)] == starts


def test_random_starts_cover_the_valid_range():
    sampler = one_video(36, 17, mode="random")
    torch.manual_seed(0)
    starts = {int(sampler(0)[1][0]) for _ in range(300)}
    assert starts == set(range(20))


def test_constant_mode_has_a_fixed_length_and_cycles_videos():
    sampler = ClipSampler(np.array([250, 132]), np.array([25.0, 25.0]), 17, mode="constant", clips_per_epoch=64)
    assert len(sampler) == 64
    assert [sampler(i)[0] for i in range(4)] == [0, 1, 0, 1]
    with pytest.raises(ValueError, match="clips_per_epoch"):
        ClipSampler(np.array([250]), np.array([25.0]), 17, mode="constant")


def test_target_fps_resamples_indices():
    # 25 fps → 10 fps: 2.5 source frames per clip frame; span 11, centered start (100 − 11) // 2 = 44.
    assert one_video(100, 5, fps=25.0, target_fps=10.0, mode="uniform")(0)[1].tolist() == [44, 46, 49, 51, 54]
    # 30 fps → 15 fps with stride 2: step 4.
    assert (np.diff(one_video(200, 6, stride=2, fps=30.0, target_fps=15.0)(0)[1]) == 4).all()


def test_invalid_arguments():
    with pytest.raises(ValueError, match="must be >= 1"):
        one_video(10, 0)
    with pytest.raises(ValueError, match="target_fps"):
        one_video(10, 4, target_fps=0.0)
    with pytest.raises(ValueError, match="short_clip"):
        one_video(10, 4, policy="pad")
    with pytest.raises(IndexError):
        one_video(10, 4)(1)
