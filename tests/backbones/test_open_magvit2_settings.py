"""The settings that run Open-MAGVIT2's weights (clip-wide GroupNorm, their AdaGN, their first-sub-frame rule,
GroupNorm eps): what each computes, that the video mode they make is not causal, and that the defaults still are
(docs/pretrained.md). Their equality with the reference code is in tests/pretrained/test_open_magvit2.py."""

import pytest
import torch
from small_backbones import assert_causal_pair, changed_frames, wake_zero_parameters
from torch import nn

from lfq_kit.backbones import Image2dDecoder, Magvit2Decoder, Magvit2Encoder
from lfq_kit.nn import (
    AdaptiveGroupNorm,
    ClipGroupNorm,
    DepthToSpaceUpsample,
    FrameGroupNorm,
    OpenMagvit2AdaptiveGroupNorm,
    depth_to_space,
)

TINY = dict(
    base_channels=8, channel_multipliers=(1, 2, 2), num_res_blocks=1, temporal_downsample=(True, True), num_groups=4
)
OPEN_MAGVIT2_VIDEO = dict(norm_eps=1e-6, clip_wide_norm=True)


def test_clip_group_norm_is_group_norm_over_the_whole_clip():
    norm = ClipGroupNorm(8, num_groups=4, eps=1e-6)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    reference = nn.GroupNorm(4, 8, eps=1e-6)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(2, 8, 5, 6, 6) * torch.arange(1, 6).view(1, 1, 5, 1, 1)
    torch.testing.assert_close(norm(x), reference(x), rtol=0, atol=0)
    frame = FrameGroupNorm(8, num_groups=4, eps=1e-6)
    frame.load_state_dict(norm.state_dict())
    torch.testing.assert_close(norm(x[:, :, :1]), frame(x[:, :, :1]))  # one frame: no difference
    assert changed_frames(norm(x + torch.eye(5)[4].view(1, 1, 5, 1, 1)), norm(x)) == [True] * 5  # the future leaks


def test_open_magvit2_adaptive_norm_uses_the_unbiased_statistics_of_the_whole_latent():
    torch.manual_seed(1)
    norm = OpenMagvit2AdaptiveGroupNorm(8, 3, num_groups=4, eps=1e-6, norm_layer=ClipGroupNorm)
    x, cond = torch.randn(2, 8, 5, 4, 4, dtype=torch.float64), torch.randn(2, 3, 2, 2, 2, dtype=torch.float64)
    norm = norm.double()
    torch.testing.assert_close(norm(x, cond), nn.functional.group_norm(x, 4, eps=1e-6))  # starts as a plain GN
    wake = [nn.init.normal_(p) for p in norm.parameters()]
    assert len(wake) == 4
    flat = cond.flatten(2)
    n = flat.shape[-1]
    mean = flat.sum(-1) / n
    std = (((flat - mean[..., None]) ** 2).sum(-1) / (n - 1) + 1e-6).sqrt()  # Bessel's correction: unbiased
    scale = std @ norm.gamma.weight.T + norm.gamma.bias
    shift = mean @ norm.beta.weight.T + norm.beta.bias
    expected = nn.functional.group_norm(x, 4, eps=1e-6) * scale[..., None, None, None] + shift[..., None, None, None]
    torch.testing.assert_close(norm(x, cond), expected, rtol=1e-12, atol=1e-12)


def test_keep_first_subframe_keeps_sub_frame_zero_of_the_first_frame():
    up = DepthToSpaceUpsample(4, (2, 2, 2), keep_first_subframe=True)
    default = DepthToSpaceUpsample(4, (2, 2, 2))
    default.load_state_dict(up.state_dict())
    x = torch.randn(1, 4, 3, 2, 2)
    full = depth_to_space(up.conv(x), (2, 2, 2))  # 6 frames: two sub-frames per input frame
    torch.testing.assert_close(up(x), full[:, :, [0, 2, 3, 4, 5]], rtol=0, atol=0)
    torch.testing.assert_close(default(x), full[:, :, [1, 2, 3, 4, 5]], rtol=0, atol=0)
    image = x[:, :, :1]
    torch.testing.assert_close(up(image), depth_to_space(up.conv(image), (2, 2, 2))[:, :, [0]], rtol=0, atol=0)


def _pair(**settings):
    torch.manual_seed(0)
    enc = Magvit2Encoder(out_channels=6, padding_mode="zeros", **TINY, **settings)
    dec = (
        Magvit2Decoder(
            in_channels=6,
            padding_mode="zeros",
            **TINY,
            **settings,
            adaptive_norm_variant="open_magvit2",
            keep_first_subframe=True,
        )
        if settings
        else Magvit2Decoder(in_channels=6, **TINY)
    )
    return wake_zero_parameters(enc).eval(), wake_zero_parameters(dec).eval()


def test_open_magvit2_video_mode_is_not_causal_and_the_default_still_is():
    x = torch.randn(1, 3, 17, 16, 16)
    assert_causal_pair(*_pair(), x)
    enc, dec = _pair(**OPEN_MAGVIT2_VIDEO)
    assert isinstance(enc.norm_out, ClipGroupNorm) and isinstance(dec.levels[0].norm, OpenMagvit2AdaptiveGroupNorm)
    with pytest.raises(AssertionError):
        assert_causal_pair(enc, dec, x)
    with torch.no_grad():
        x2 = x.clone()
        x2[:, :, 16] += 1.0  # the last frame changes the first latent frame and, decoded, the first output frame
        assert changed_frames(enc(x2), enc(x))[0]
        z = enc(x)
        z2 = z.clone()
        z2[:, :, -1] += 1.0
        assert changed_frames(dec(z2), dec(z))[0]


def test_keep_first_subframe_alone_stays_causal():
    torch.manual_seed(0)
    enc = wake_zero_parameters(Magvit2Encoder(out_channels=6, **TINY)).eval()
    dec = wake_zero_parameters(Magvit2Decoder(in_channels=6, keep_first_subframe=True, **TINY)).eval()
    assert_causal_pair(enc, dec, torch.randn(1, 3, 17, 16, 16))


def test_defaults_keep_the_magvit2_layers():
    dec = Magvit2Decoder(in_channels=6, **TINY)
    assert type(dec.levels[0].norm) is AdaptiveGroupNorm and dec.levels[0].norm.norm.eps == 1e-5
    assert type(dec.norm_out) is FrameGroupNorm and dec.norm_out.eps == 1e-5
    assert not dec.levels[0].resample.keep_first_subframe
    image = Image2dDecoder(
        in_channels=6,
        base_channels=8,
        channel_multipliers=(1, 2),
        num_res_blocks=1,
        num_groups=4,
        norm_eps=1e-6,
        adaptive_norm_variant="open_magvit2",
    )
    assert type(image.norm_out) is FrameGroupNorm and image.norm_out.eps == 1e-6
    with pytest.raises(ValueError, match="adaptive_norm_variant must be"):
        Image2dDecoder(in_channels=6, adaptive_norm_variant="stylegan")
