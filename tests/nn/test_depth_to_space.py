"""depth_to_space / space_to_depth and the causal depth-to-space upsampler (invariants 10, 11)."""

import pytest
import torch
import torch.nn.functional as F

from lfq_kit.nn import DepthToSpaceUpsample, SameConv2d, depth_to_space, space_to_depth


@pytest.mark.parametrize(
    "shape, factors", [((2, 8, 3, 4), (2, 2)), ((2, 24, 3, 4, 5), (2, 3, 2)), ((1, 4, 2, 2, 2), (1, 2, 2))]
)
def test_space_to_depth_inverts_depth_to_space(shape, factors):
    x = torch.randn(shape)
    y = depth_to_space(x, factors)
    assert torch.equal(space_to_depth(y, factors), x)
    assert torch.equal(depth_to_space(space_to_depth(y, factors), factors), y)


def test_channel_layouts():
    x = torch.randn(2, 12, 3, 4)
    assert torch.equal(depth_to_space(x, (2, 2)), F.pixel_shuffle(x, 2))  # images: (C, s_h, s_w)
    v = torch.randn(2, 2 * 3 * 4, 5, 3, 4)  # videos: (s_t, C, s_h, s_w), each sub-frame a pixel-shuffle block
    y = depth_to_space(v, (2, 2, 2))
    for t in range(5):
        for i in range(2):
            assert torch.equal(y[:, :, 2 * t + i], F.pixel_shuffle(v[:, 12 * i : 12 * (i + 1), t], 2))


def test_layout_errors():
    with pytest.raises(ValueError, match="divisible by 8"):
        depth_to_space(torch.randn(1, 12, 2, 2, 2), (2, 2, 2))
    with pytest.raises(ValueError, match="do not fit"):
        depth_to_space(torch.randn(1, 8, 2, 2), (2, 2, 2))
    with pytest.raises(ValueError, match="sizes divisible"):
        space_to_depth(torch.randn(1, 1, 3, 4), (2, 2))


@pytest.mark.parametrize(
    "factors, t_in, t_out", [((2, 2, 2), 5, 9), ((2, 2, 2), 9, 17), ((2, 2, 2), 1, 1), ((1, 2, 2), 5, 5)]
)
def test_upsampler_drops_the_leading_frames(factors, t_in, t_out):
    up = DepthToSpaceUpsample(4, factors, out_channels=3)
    assert up(torch.randn(2, 4, t_in, 3, 2)).shape == (2, 3, t_out, 6, 4)


def test_image_upsampler():
    up = DepthToSpaceUpsample(4, (2, 2), conv_layer=SameConv2d)
    assert up(torch.randn(2, 4, 3, 5)).shape == (2, 4, 6, 10)
    with pytest.raises(ValueError, match="expects a 4-D"):
        up(torch.randn(2, 4, 1, 3, 5))


def test_upsampler_is_causal():
    up = DepthToSpaceUpsample(3, (2, 2, 2))
    x = torch.randn(1, 3, 5, 2, 2)
    y = up(x)
    for j in range(5):
        x2 = x.clone()
        x2[:, :, j] += 1.0
        changed = (up(x2) != y).flatten(3).any(-1).any(1).any(0)
        first = 0 if j == 0 else 2 * j - 1  # input frame j produces output frames 2j − 1, 2j
        assert not changed[:first].any(), j
        assert changed[first], j
