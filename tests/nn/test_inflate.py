"""inflate_conv_weight and inflate_2d_to_3d on single layers (model-level tests: tests/backbones/test_inflation.py)."""

import pytest
import torch
from torch import nn

from lfq_kit.nn import CausalConv3d, SameConv2d, SameConv3d, inflate_2d_to_3d, inflate_conv_weight


def test_causal_inflation_fills_the_last_slice_and_non_causal_the_centre():
    w = torch.randn(4, 3, 3, 3)
    causal = inflate_conv_weight(w, 3)
    assert causal.shape == (4, 3, 3, 3, 3)
    assert torch.equal(causal[:, :, 2], w) and not causal[:, :, :2].any()
    centre = inflate_conv_weight(w, 3, causal=False)
    assert torch.equal(centre[:, :, 1], w) and not centre[:, :, [0, 2]].any()
    with pytest.raises(ValueError, match="odd kt"):
        inflate_conv_weight(w, 4, causal=False)
    with pytest.raises(ValueError, match="2D conv weight"):
        inflate_conv_weight(torch.randn(4, 3, 3), 3)


@pytest.mark.parametrize("stride", [1, 2])
def test_an_inflated_causal_conv_is_the_2d_conv_on_every_frame(stride):
    conv2d = SameConv2d(3, 5, 3, stride=stride)
    conv3d = inflate_2d_to_3d(conv2d, CausalConv3d(3, 5, 3, stride=(1, stride, stride)))
    x = torch.randn(2, 3, 4, 8, 8)  # any clip, not only a constant one: the kernel only sees the current frame
    y = conv3d(x)
    for t in range(4):
        torch.testing.assert_close(y[:, :, t], conv2d(x[:, :, t]), atol=1e-5, rtol=1e-5)


def test_non_causal_inflation_matches_on_a_constant_clip():
    conv2d = SameConv2d(2, 3, 3)
    conv3d = inflate_2d_to_3d(conv2d, SameConv3d(2, 3, 3), causal=False)
    image = torch.randn(1, 2, 6, 6)
    y = conv3d(image.unsqueeze(2).expand(-1, -1, 5, -1, -1))
    torch.testing.assert_close(y[:, :, 2], conv2d(image), atol=1e-5, rtol=1e-5)  # interior frames


def test_mismatched_models_are_refused():
    with pytest.raises(ValueError, match="does not fit"):
        inflate_2d_to_3d(SameConv2d(3, 5, 3), CausalConv3d(3, 4, 3))
    with pytest.raises(ValueError, match="module trees differ"):
        inflate_2d_to_3d(nn.Sequential(SameConv2d(3, 5, 3)), nn.Sequential(CausalConv3d(3, 5, 3), nn.SiLU()))
    with pytest.raises(ValueError, match="shapes"):
        inflate_2d_to_3d(nn.GroupNorm(2, 4), nn.GroupNorm(2, 6))
