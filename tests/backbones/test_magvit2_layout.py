"""The paper configuration follows reference Sec. 2 layer by layer (built on the meta device: no memory)."""

import torch

from lfq_kit.backbones import Magvit2Decoder, Magvit2Encoder, StyleGANDiscriminator3d
from lfq_kit.nn import AdaptiveGroupNorm, CausalConv3d, DepthToSpaceUpsample


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_paper_encoder_layout():
    with torch.device("meta"):
        enc = Magvit2Encoder()
    assert (enc.conv_in.in_channels, enc.conv_in.out_channels, enc.conv_in.kernel_size) == (3, 128, (3, 3, 3))
    assert [[(b.in_channels, b.out_channels) for b in level.blocks] for level in enc.levels] == [
        [(128, 128)] * 4,
        [(128, 256)] + [(256, 256)] * 3,
        [(256, 256)] * 4,
        [(256, 512)] + [(512, 512)] * 3,
    ]
    downs = [level.resample for level in enc.levels[:-1]]
    assert all(isinstance(d, CausalConv3d) and d.kernel_size == (3, 3, 3) for d in downs)
    assert [d.stride for d in downs] == [(1, 2, 2), (2, 2, 2), (2, 2, 2)]
    assert [(b.in_channels, b.out_channels) for b in enc.mid] == [(512, 512)] * 4
    assert (enc.conv_out.in_channels, enc.conv_out.out_channels, enc.conv_out.kernel_size) == (512, 18, (1, 1, 1))
    assert (enc.temporal_compression, enc.spatial_compression, enc.latent_shape(17, 128, 128)) == (4, 8, (5, 16, 16))
    assert n_params(enc) == 144_879_506


def test_paper_decoder_layout():
    with torch.device("meta"):
        dec = Magvit2Decoder()
    assert (dec.conv_in.in_channels, dec.conv_in.out_channels) == (18, 512)
    assert [(b.in_channels, b.out_channels) for b in dec.mid] == [(512, 512)] * 4
    assert all(isinstance(level.norm, AdaptiveGroupNorm) and level.norm.cond_channels == 18 for level in dec.levels)
    assert [level.norm.num_channels for level in dec.levels] == [512, 512, 256, 256]
    ups = [level.resample for level in dec.levels[:-1]]
    assert all(isinstance(u, DepthToSpaceUpsample) for u in ups)
    assert [u.factors for u in ups] == [(2, 2, 2), (2, 2, 2), (1, 2, 2)]
    assert [(u.conv.in_channels, u.conv.out_channels) for u in ups] == [(512, 512 * 8), (256, 256 * 8), (256, 256 * 4)]
    assert (dec.conv_out.in_channels, dec.conv_out.out_channels, dec.conv_out.kernel_size) == (128, 3, (3, 3, 3))
    assert dec.output_shape(5, 16, 16) == (17, 128, 128)
    assert n_params(dec) == 225_695_747


def test_paper_discriminator_channels_and_final_grid():
    with torch.device("meta"):
        d = StyleGANDiscriminator3d()
    assert [(b.conv1.in_channels, b.conv2.out_channels) for b in d.blocks] == [
        (128, 256),
        (256, 512),
        (512, 512),
        (512, 512),
        (512, 512),
    ]
    assert d.fc1.in_features == 512 * 1 * 4 * 4 and d.fc2.out_features == 1
    small = StyleGANDiscriminator3d(base_channels=1, channel_multipliers=(1, 1, 1, 1, 1))
    grids = []
    small.conv_out.register_forward_hook(lambda m, i, o: grids.append(tuple(o.shape[2:])))
    small(torch.randn(1, 3, 17, 128, 128))
    assert grids == [(1, 4, 4)]  # the paper's 17×128×128 reaches exactly final_size: no pooling happens
