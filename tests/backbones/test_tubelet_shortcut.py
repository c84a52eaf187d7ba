"""The tubelet shortcut: an exact linear map of each token's causal pixel tubelet, causal inside the MAGVIT-v2
encoder and decoder, and off by default (the paper's architecture)."""

import itertools

import pytest
import torch
from small_backbones import SMALL_BACKBONES, assert_causal_pair, wake_zero_parameters

from lfq_kit.backbones import Magvit2Decoder, Magvit2Encoder
from lfq_kit.nn import TubeletEmbed, TubeletUnembed


def tubelet(x: torch.Tensor, j: int, i: int, k: int, r: int, s: int) -> torch.Tensor:
    """Pixels of token (j, i, k) of x (B, C, T, H, W): frame 0 alone padded with copies of itself for j = 0,
    frames r·(j − 1) + 1 … r·j otherwise."""
    frames = [0] * r if j == 0 else list(range(r * (j - 1) + 1, r * j + 1))
    return x[:, :, frames, i * s : (i + 1) * s, k * s : (k + 1) * s]


def test_embed_is_a_linear_map_of_each_causal_tubelet():
    torch.manual_seed(0)
    layer = TubeletEmbed(3, 5, (4, 2, 2))
    x = torch.randn(2, 3, 9, 4, 6)
    z = layer(x)
    assert z.shape == (2, 5, 3, 2, 3)
    w, b = layer.proj.weight, layer.proj.bias
    for j, i, k in itertools.product(range(3), range(2), range(3)):  # every token of the 3 × 2 × 3 grid
        expected = torch.einsum("bctyx,octyx->bo", tubelet(x, j, i, k, 4, 2), w) + b
        torch.testing.assert_close(z[:, :, j, i, k], expected, atol=1e-5, rtol=1e-5)


def test_embed_zero_padding_uses_zeros_before_the_clip():
    layer = TubeletEmbed(1, 1, (4, 1, 1), padding_mode="zeros")
    with torch.no_grad():
        layer.proj.weight.fill_(1.0)
        layer.proj.bias.zero_()
    x = torch.arange(1.0, 6.0).view(1, 1, 5, 1, 1)  # frames 1..5
    assert layer(x).flatten().tolist() == [1.0, 2 + 3 + 4 + 5]
    replicate = TubeletEmbed(1, 1, (4, 1, 1))
    replicate.load_state_dict(layer.state_dict())
    assert replicate(x).flatten().tolist() == [4.0, 14.0]


def test_unembed_writes_each_latent_vector_into_its_tubelet():
    torch.manual_seed(0)
    layer = TubeletUnembed(5, 3, (4, 2, 2))
    z = torch.randn(2, 5, 3, 2, 3)
    x = layer(z)
    assert x.shape == (2, 3, 9, 4, 6)
    w, b = layer.proj.weight, layer.proj.bias  # (C_in, C_out, r, s, s)
    for t, y, v in itertools.product(range(9), range(4), range(6)):  # every output pixel
        j, slot = -(-t // 4), (t + 3) % 4  # latent frame ceil(t / 4); frame 0 is the last slot of tubelet 0
        expected = torch.einsum("bc,co->bo", z[:, :, j, y // 2, v // 2], w[:, :, slot, y % 2, v % 2]) + b
        torch.testing.assert_close(x[:, :, t, y, v], expected, atol=1e-5, rtol=1e-5)


def test_images_are_one_frame_clips():
    embed, unembed = TubeletEmbed(3, 4, (4, 8, 8)), TubeletUnembed(4, 3, (4, 8, 8))
    z = embed(torch.randn(2, 3, 1, 16, 16))
    assert z.shape == (2, 4, 1, 2, 2) and unembed(z).shape == (2, 3, 1, 16, 16)


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: TubeletEmbed(3, 4, (4, 8)), r"\(r_t, s_h, s_w\)"),
        (lambda: TubeletUnembed(3, 4, (0, 8, 8)), r"each ≥ 1"),
        (lambda: TubeletEmbed(3, 4, padding_mode="reflect"), r"'replicate' or 'zeros'"),
        (lambda: TubeletEmbed(3, 4)(torch.randn(1, 3, 8, 8)), r"expects \(B, C, T, H, W\)"),
        (lambda: TubeletUnembed(4, 3)(torch.randn(1, 4, 2, 2)), r"expects \(B, C, T', H', W'\)"),
    ],
)
def test_errors_name_the_problem(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def shortcut_pair():
    enc = Magvit2Encoder(**SMALL_BACKBONES["Magvit2Encoder"], tubelet_shortcut=True).eval()
    dec = wake_zero_parameters(Magvit2Decoder(**SMALL_BACKBONES["Magvit2Decoder"], tubelet_shortcut=True)).eval()
    return enc, dec


def test_off_by_default_and_adds_only_the_two_linear_maps():
    plain = Magvit2Encoder(**SMALL_BACKBONES["Magvit2Encoder"])
    enc, dec = shortcut_pair()
    assert plain.shortcut is None and not Magvit2Decoder(**SMALL_BACKBONES["Magvit2Decoder"]).tubelet_shortcut
    assert isinstance(enc.shortcut, TubeletEmbed) and enc.shortcut.factors == (4, 8, 8)
    assert isinstance(dec.shortcut, TubeletUnembed) and dec.shortcut.factors == (4, 8, 8)
    extra = sum(p.numel() for p in enc.parameters()) - sum(p.numel() for p in plain.parameters())
    assert extra == 3 * 4 * 8 * 8 * 6 + 6
    # The encoder's latent is the deep path plus the shortcut, exactly.
    x = torch.randn(1, 3, 9, 16, 16)
    with torch.no_grad():
        shortcut, enc.shortcut = enc.shortcut, None
        deep = enc(x)
        enc.shortcut = shortcut
        torch.testing.assert_close(enc(x), deep + shortcut(x))


def test_shortcut_models_keep_shapes_and_causality():
    enc, dec = shortcut_pair()
    x = torch.randn(1, 3, 17, 16, 16)
    with torch.no_grad():
        z = enc(x)
        assert z.shape == (1, 6, 5, 2, 2) and dec(z).shape == (1, 3, 17, 16, 16)
        assert enc(x[:, :, :1]).shape == (1, 6, 1, 2, 2)
    assert_causal_pair(enc, dec, x)


def test_shortcut_gets_gradients():
    enc, dec = shortcut_pair()
    dec(enc(torch.randn(1, 3, 5, 16, 16))).square().mean().backward()
    for m in (enc.shortcut, dec.shortcut):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


@pytest.mark.parametrize(
    "temporal", [(False, False, False), (True, False, False), (False, True, True), (True, True, True)]
)
@pytest.mark.parametrize("padding_mode", ["replicate", "zeros"])
def test_shortcut_factors_follow_the_levels(temporal, padding_mode):
    kw = {**SMALL_BACKBONES["Magvit2Encoder"], "temporal_downsample": temporal, "padding_mode": padding_mode}
    enc = Magvit2Encoder(**kw, tubelet_shortcut=True)
    dec_kw = {k: v for k, v in kw.items() if k != "out_channels"}
    dec = Magvit2Decoder(**dec_kw, in_channels=6, tubelet_shortcut=True)
    r = 2 ** sum(temporal)
    assert enc.shortcut.factors == dec.shortcut.factors == (r, 8, 8) == (enc.temporal_compression, 8, 8)
    assert enc.shortcut.padding_mode == padding_mode
    x = torch.randn(1, 3, 1 + 2 * r, 16, 16)
    with torch.no_grad():
        z = enc(x)
        assert z.shape == (1, 6, 3, 2, 2) and dec(z).shape == x.shape


def test_embed_rejects_clips_off_the_grid():
    with pytest.raises(ValueError, match=r"T = 1 \+ 4k frames and H, W divisible by 8, 8; got T × H × W = 8 × 16 × 16"):
        TubeletEmbed(3, 4)(torch.randn(1, 3, 8, 16, 16))
    with pytest.raises(ValueError, match=r"got T × H × W = 5 × 12 × 16"):
        TubeletEmbed(3, 4)(torch.randn(1, 3, 5, 12, 16))


def test_inflation_builds_models_without_the_shortcut():
    from lfq_kit.backbones import Image2dEncoder

    enc2d = Image2dEncoder(**SMALL_BACKBONES["Image2dEncoder"])
    assert Magvit2Encoder.from_2d(enc2d).shortcut is None
    plain = Magvit2Encoder(**SMALL_BACKBONES["Magvit2Encoder"])
    with pytest.raises(RuntimeError, match=r"shortcut\.proj\.weight"):  # strict loading names what is missing
        Magvit2Encoder(**SMALL_BACKBONES["Magvit2Encoder"], tubelet_shortcut=True).load_state_dict(plain.state_dict())
