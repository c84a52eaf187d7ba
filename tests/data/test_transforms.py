"""Clip transforms: layout (3, T, H, W), float32 in [−1, 1], exact crops, random resized crops, antialiasing,
flips."""

import pytest
import torch

from lfq_kit.data import ClipTransform
from lfq_kit.data.transforms import random_resized_box, resize, square_crop, to_signed_unit


def test_output_layout_dtype_and_range():
    frames = torch.randint(0, 256, (5, 240, 320, 3), dtype=torch.uint8)
    out = ClipTransform(64, train=True)(frames)
    assert out.shape == (3, 5, 64, 64) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    assert to_signed_unit(torch.tensor([0, 255], dtype=torch.uint8)).tolist() == [-1.0, 1.0]


def test_center_crop_without_resize_is_exact():
    frames = torch.randint(0, 256, (3, 240, 320, 3), dtype=torch.uint8)
    out = ClipTransform(240)(frames)
    expected = frames[:, :, 40:280].permute(3, 0, 1, 2).float() / 127.5 - 1
    assert torch.equal(out, expected)


def test_random_crop_stays_inside_the_frame():
    # (2, 100, 300, 1) frames whose value is the column index, so a crop's first value is its offset.
    frames = torch.arange(300).remainder(256).to(torch.uint8).view(1, 1, 300, 1).expand(2, 100, 300, 1)
    crops = [square_crop(frames, random=True) for _ in range(200)]
    assert all(c.shape == (2, 100, 100, 1) for c in crops)
    offsets = {int(c[0, 0, 0, 0]) for c in crops}
    assert min(offsets) >= 0 and max(offsets) <= 200 and len(offsets) > 50
    assert square_crop(frames)[0, 0, 0, 0] == 100  # centered


def test_downscaling_is_antialiased():
    checker = ((torch.arange(64).view(-1, 1) + torch.arange(64)) % 2 * 255.0).expand(1, 3, 64, 64)
    out = resize(checker, 16)
    assert torch.allclose(out, torch.full_like(out, 127.5), atol=1.0)


def test_flip_in_training_only():
    frames = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    plain = ClipTransform(32)(frames)
    assert torch.equal(ClipTransform(32, train=True, flip_p=1.0)(frames), plain.flip(-1))
    assert torch.equal(ClipTransform(32, train=True, flip_p=0.0)(frames), plain)
    assert torch.equal(ClipTransform(32, train=False, flip_p=1.0)(frames), plain)


def test_random_resized_box_covers_the_requested_area_fraction():
    boxes = [random_resized_box(240, 320, (0.25, 0.5)) for _ in range(300)]
    for top, left, h, w in boxes:
        assert 0 <= top and top + h <= 240 and 0 <= left and left + w <= 320
        assert 0.24 <= h * w / (240 * 320) <= 0.51 and 3 / 4 - 0.02 <= w / h <= 4 / 3 + 0.02
    assert len({b[:2] for b in boxes}) > 100  # positions vary
    assert random_resized_box(10, 1000, (0.9, 1.0)) is None  # no 3/4…4/3 box covers 90 % of a 1:100 frame


def test_random_resized_crop_is_the_same_box_for_every_frame_and_training_only():
    frame = torch.randint(0, 256, (1, 120, 160, 3), dtype=torch.uint8)
    transform = ClipTransform(32, train=True, flip_p=0.0, crop_scale=(0.1, 0.3))
    out = transform(frame.expand(4, -1, -1, -1))
    assert out.shape == (3, 4, 32, 32) and all(torch.equal(out[:, 0], out[:, t]) for t in range(4))
    evaluation = ClipTransform(32, train=False, crop_scale=(0.1, 0.3))
    assert torch.equal(evaluation(frame), ClipTransform(32)(frame))  # evaluation: the centered square
    with pytest.raises(ValueError, match="crop_scale"):
        ClipTransform(32, crop_scale=(0.0, 1.0))


def test_crop_size_cuts_a_window_of_the_resized_clip_in_training_only():
    frames = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    whole = ClipTransform(64)(frames)  # no resize at 64: exact
    windows = whole.unfold(2, 16, 1).unfold(3, 16, 1)  # (3, T, 49, 49, 16, 16): every 16 × 16 window
    transform = ClipTransform(64, train=True, flip_p=0.0, crop_size=16)
    offsets = set()
    for _ in range(50):
        out = transform(frames)
        assert out.shape == (3, 3, 16, 16)
        match = (windows == out[:, :, None, None]).flatten(-2).all(-1).all(0).all(0).nonzero().tolist()
        assert len(match) == 1  # one window, the same for every frame and channel
        offsets.add(tuple(match[0]))
    assert len(offsets) > 30  # positions vary
    assert torch.equal(ClipTransform(64, crop_size=16)(frames), whole)  # evaluation: the whole frame
    with pytest.raises(ValueError, match="crop_size"):
        ClipTransform(64, crop_size=65)
