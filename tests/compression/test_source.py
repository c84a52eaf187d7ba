"""Inputs: sample clips by name, the exact frame rate, the quickstart's evaluation transform, chunk planning and
padding."""

from fractions import Fraction

import pytest
import torch

from lfq_kit.compression.layout import default_chunk_frames, pad_clip, plan_chunks, valid_length
from lfq_kit.compression.source import FileSource, SquareResizedSource, resolve_input
from lfq_kit.data import ClipTransform


def test_sample_clips_by_name_with_their_exact_rate():
    src = FileSource("sample:carphone_pristine.mp4")
    assert (src.num_frames, src.height, src.width, src.fps, src.has_audio) == (
        120,
        144,
        176,
        Fraction(30000, 1001),
        False,
    )
    with pytest.raises(FileNotFoundError, match="no sample clip 'cat.mp4'; the bundled ones are bikes.mp4, "):
        resolve_input("sample:cat.mp4")


def test_square_resize_is_the_data_modules_evaluation_transform():
    src = FileSource("sample:carphone_pristine.mp4")
    mine = SquareResizedSource(src, 64).read(3, 5)
    theirs = ClipTransform(64, train=False)(src.read(3, 5))  # (3, T, 64, 64) in [-1, 1]
    assert mine.shape == (5, 64, 64, 3) and mine.dtype == torch.uint8
    assert torch.allclose(mine.permute(3, 0, 1, 2).float() / 127.5 - 1, theirs, atol=1e-6)


def test_chunk_plans_and_padding():
    assert (default_chunk_frames(4, True), default_chunk_frames(2, True), default_chunk_frames(4, False)) == (
        17,
        17,
        16,
    )
    assert [valid_length(n, 4, True) for n in (1, 2, 5, 6)] == [1, 5, 5, 9]
    assert plan_chunks(40, 17, 4, True) == [(0, 0, 17, 17), (1, 17, 17, 17), (2, 34, 6, 9)]
    assert plan_chunks(40, 17, 4, True, pad_last_to_full=True)[-1] == (2, 34, 6, 17)
    with pytest.raises(
        ValueError, match=r"chunk_frames must be a length the tokenizer accepts \(1 \+ 4k frames\), got 16"
    ):
        plan_chunks(40, 16, 4, True)
    frames = torch.arange(2 * 3 * 2 * 3, dtype=torch.uint8).view(2, 3, 2, 3)  # (T, H, W, C)
    video = pad_clip(frames, 4, 4, 3)
    assert video.shape == (3, 4, 4, 3)
    assert torch.equal(video[:, 3], video[:, 1]) and torch.equal(video[:, :, 3], video[:, :, 2])  # last frame, edge row
    assert torch.equal(video[:, :, :, 2], video[:, :, :, 1])
    assert video[0, 0, 0, 0] == frames[0, 0, 0, 0].float() / 127.5 - 1
