"""2D → 3D inflation of the image CNN into the causal MAGVIT-v2 CNN (reference Sec. 2, "Inflation").

What holds, exactly up to float rounding:
* a clip constant in time encodes, frame by frame, like the 2D encoder encodes its frame, and a latent
  constant in time decodes like the 2D decoder, with or without temporal down/upsampling;
* without temporal downsampling the inflated encoder equals the 2D encoder on every frame of ANY clip
  (every kernel only sees the current frame); with it, latent frame j equals the 2D latent of frame 2j, 4j, ...
"""

import pytest
import torch
from small_backbones import SMALL_BACKBONES, wake_zero_parameters

from lfq_kit.backbones import Image2dDecoder, Image2dEncoder, Magvit2Decoder, Magvit2Encoder
from lfq_kit.nn import inflate_2d_to_3d

TOL = {"atol": 1e-5, "rtol": 1e-5}


def per_frame(fn, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([fn(x[:, :, t]) for t in range(x.shape[2])], 2)


@pytest.mark.parametrize("temporal", [(False, True, True), (False, False, False)], ids=["t4", "t1"])
def test_constant_clip_reconstructs_like_the_2d_model(temporal):
    enc2d = Image2dEncoder(**SMALL_BACKBONES["Image2dEncoder"]).eval()
    dec2d = wake_zero_parameters(Image2dDecoder(**SMALL_BACKBONES["Image2dDecoder"])).eval()
    enc3d = Magvit2Encoder.from_2d(enc2d, temporal_downsample=temporal).eval()
    dec3d = Magvit2Decoder.from_2d(dec2d, temporal_downsample=temporal).eval()
    image = torch.randn(2, 3, 16, 16)
    clip = image.unsqueeze(2).expand(-1, -1, 9, -1, -1)
    with torch.no_grad():
        z2d, z3d = enc2d(image), enc3d(clip)
        assert z3d.shape[2] == (3 if temporal[1] else 9)
        for t in range(z3d.shape[2]):
            torch.testing.assert_close(z3d[:, :, t], z2d, **TOL)
        x2d, x3d = dec2d(z2d), dec3d(z2d.unsqueeze(2).expand_as(z3d))
        assert x3d.shape == clip.shape
        for t in range(9):
            torch.testing.assert_close(x3d[:, :, t], x2d, **TOL)


@pytest.mark.parametrize("padding_mode", ["replicate", "zeros"])
def test_without_temporal_downsampling_any_clip_is_coded_frame_by_frame(padding_mode):
    enc2d = Image2dEncoder(**SMALL_BACKBONES["Image2dEncoder"]).eval()
    enc3d = Magvit2Encoder.from_2d(enc2d, temporal_downsample=(False, False, False), padding_mode=padding_mode).eval()
    clip = torch.randn(1, 3, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(enc3d(clip), enc2d(clip), **TOL)  # Image2dEncoder folds frames itself


def test_temporal_downsampling_reads_the_last_frame_of_each_block():
    enc2d = Image2dEncoder(**SMALL_BACKBONES["Image2dEncoder"]).eval()
    enc3d = Magvit2Encoder.from_2d(enc2d).eval()
    clip = torch.randn(1, 3, 9, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(enc3d(clip), per_frame(enc2d, clip[:, :, ::4]), **TOL)


def test_inflation_refuses_models_that_differ():
    enc2d = Image2dEncoder(**SMALL_BACKBONES["Image2dEncoder"])
    other = Magvit2Encoder(**{**SMALL_BACKBONES["Magvit2Encoder"], "num_res_blocks": 2})
    with pytest.raises(ValueError, match="module trees differ"):
        inflate_2d_to_3d(enc2d, other)
    wider = Magvit2Encoder(**{**SMALL_BACKBONES["Magvit2Encoder"], "base_channels": 16})
    with pytest.raises(ValueError, match="does not fit|shapes"):
        inflate_2d_to_3d(enc2d, wider)
