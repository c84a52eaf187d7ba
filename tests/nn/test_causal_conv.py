"""CausalConv3d and SameConv: output grids, causality (invariant 10), temporal padding modes, errors."""

import pytest
import torch

from lfq_kit.nn import CausalConv3d, SameConv2d, SameConv3d


@pytest.mark.parametrize("t, expected", [(17, 9), (9, 5), (5, 3), (1, 1), (2, 1)])
def test_temporal_stride_two_gives_t_minus_one_halved_plus_one(t, expected):
    conv = CausalConv3d(2, 3, 3, stride=(2, 2, 2))
    assert conv(torch.randn(1, 2, t, 8, 6)).shape == (1, 3, expected, 4, 3)


def test_stride_one_keeps_the_grid_and_17_9_5_chain():
    conv = CausalConv3d(2, 2, 3)
    assert conv(torch.randn(1, 2, 5, 7, 7)).shape == (1, 2, 5, 7, 7)
    down = CausalConv3d(2, 2, 3, stride=(2, 1, 1))
    x = torch.randn(1, 2, 17, 4, 4)
    assert [x.shape[2], down(x).shape[2], down(down(x)).shape[2]] == [17, 9, 5]


@pytest.mark.parametrize("padding_mode", ["replicate", "zeros"])
@pytest.mark.parametrize("kernel, stride", [(3, 1), (3, 2), ((4, 3, 3), 1), ((2, 3, 3), 2)])
def test_perturbing_frame_t_never_changes_earlier_outputs(padding_mode, kernel, stride):
    conv = CausalConv3d(2, 3, kernel, stride=(stride, 1, 1), padding_mode=padding_mode)
    x = torch.randn(2, 2, 9, 5, 5)
    y = conv(x)
    for t in range(9):
        x2 = x.clone()
        x2[:, :, t] += torch.randn_like(x2[:, :, t])
        y2 = conv(x2)
        first_affected = -(-t // stride)  # output j reads input frames ≤ j·stride
        assert torch.equal(y2[:, :, :first_affected], y[:, :, :first_affected]), t
        assert not torch.equal(y2[:, :, first_affected], y[:, :, first_affected]), t


def test_replicate_padding_makes_an_image_look_like_a_static_clip():
    conv = CausalConv3d(3, 4, 3, padding_mode="replicate")
    image = torch.randn(1, 3, 1, 6, 6)
    static = conv(image.expand(-1, -1, 4, -1, -1))
    for t in range(4):
        torch.testing.assert_close(static[:, :, t], conv(image)[:, :, 0])
    zeros = CausalConv3d(3, 4, 3, padding_mode="zeros")
    zeros.load_state_dict(conv.state_dict())
    assert not torch.allclose(zeros(image), conv(image))  # zero frames: the image sees a black past


def test_errors():
    with pytest.raises(ValueError, match="odd kernel"):
        CausalConv3d(1, 1, (3, 2, 3))
    with pytest.raises(ValueError, match="padding_mode"):
        CausalConv3d(1, 1, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        CausalConv3d(1, 1, 3)(torch.randn(1, 1, 4, 4))
    with pytest.raises(ValueError, match="odd kernel"):
        SameConv2d(1, 1, 2)


def test_same_convs_keep_or_halve_the_grid():
    assert SameConv2d(2, 3, 3, stride=2)(torch.randn(1, 2, 8, 7)).shape == (1, 3, 4, 4)
    assert SameConv3d(2, 3, 3)(torch.randn(1, 2, 5, 8, 7)).shape == (1, 3, 5, 8, 7)


def test_pad_causal_puts_frame_0_or_zeros_before_the_clip():
    from lfq_kit.nn.causal_conv import pad_causal

    x = torch.arange(1.0, 4.0).view(1, 1, 3, 1, 1)
    assert pad_causal(x, 2).flatten().tolist() == [1.0, 1.0, 1.0, 2.0, 3.0]
    assert pad_causal(x, 2, "zeros").flatten().tolist() == [0.0, 0.0, 1.0, 2.0, 3.0]
    assert pad_causal(x, 0) is x
