"""The token MLP: an exact per-token MLP, placed between the conv stack and the quantizer's channels on both
sides of the MAGVIT-v2 tokenizer, causal, and off by default (the paper's architecture)."""

import pytest
import torch
import torch.nn.functional as F
from small_backbones import SMALL_BACKBONES, assert_causal_pair, wake_zero_parameters

from lfq_kit.backbones import Magvit2Decoder, Magvit2Encoder
from lfq_kit.nn import AdaptiveGroupNorm, TokenMLP


def reference_mlp(mlp: TokenMLP, x: torch.Tensor) -> torch.Tensor:
    """The same weights applied as dense layers to channels-last vectors, one token at a time in effect."""
    h = x.movedim(1, -1)
    convs = [m for m in mlp if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    for i, conv in enumerate(convs):
        h = F.linear(h, conv.weight.flatten(1), conv.bias)
        if i < len(convs) - 1:
            h = h * torch.sigmoid(h)  # Swish
    return h.movedim(-1, 1)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("spatial_dims, shape", [(3, (2, 5, 3, 4, 4)), (2, (2, 5, 4, 4))])
def test_mlp_is_a_dense_mlp_on_each_token(depth, spatial_dims, shape):
    torch.manual_seed(0)
    mlp = TokenMLP(5, 16, 7, depth=depth, spatial_dims=spatial_dims)
    assert sum(isinstance(m, torch.nn.SiLU) for m in mlp) == depth
    convs = [m for m in mlp if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(5, 16)] + [(16, 16)] * (depth - 1) + [(16, 7)]
    assert all(c.kernel_size == (1,) * spatial_dims for c in convs)
    x = torch.randn(shape)
    y = mlp(x)
    assert y.shape == (shape[0], 7, *shape[2:])
    torch.testing.assert_close(y, reference_mlp(mlp, x))
    # Per token: changing one token's vector changes that token's output only.
    x2 = x.clone()
    x2[(0, slice(None)) + (1,) * (len(shape) - 2)] += 1.0
    changed = (mlp(x2) != y).any(1)
    assert changed.sum() == 1 and changed[(0,) + (1,) * (len(shape) - 2)]


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: TokenMLP(4, 8, 4, depth=0), r"depth must be ≥ 1"),
        (lambda: TokenMLP(4, 0, 4), r"channels must be ≥ 1, got in=4, hidden=0, out=4"),
        (lambda: TokenMLP(4, 8, 4, spatial_dims=1), r"spatial_dims must be 2 or 3, got 1"),
        (lambda: TokenMLP(4, 8, 4)(torch.randn(1, 5, 1, 2, 2)), r"expects \(B, 4, T, H, W\), got \(1, 5, 1, 2, 2\)"),
        (lambda: TokenMLP(4, 8, 4)(torch.randn(4, 4, 5, 5)), r"expects \(B, 4, T, H, W\), got \(4, 4, 5, 5\)"),
        (lambda: TokenMLP(4, 8, 4, spatial_dims=2)(torch.randn(4, 4, 7)), r"expects \(B, 4, H, W\), got \(4, 4, 7\)"),
        (lambda: Magvit2Encoder(token_mlp_channels=-1), r"token_mlp_channels must be ≥ 0 \(0: no token MLP\)"),
        (lambda: Magvit2Decoder(token_mlp_channels=8, token_mlp_depth=0), r"token_mlp_depth ≥ 1, got 8 and 0"),
    ],
)
def test_errors_name_the_problem(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def mlp_pair(depth: int = 2, tubelet_shortcut: bool = False):
    kw = {"token_mlp_channels": 24, "token_mlp_depth": depth, "tubelet_shortcut": tubelet_shortcut}
    enc = Magvit2Encoder(**SMALL_BACKBONES["Magvit2Encoder"], **kw).eval()
    dec = wake_zero_parameters(Magvit2Decoder(**SMALL_BACKBONES["Magvit2Decoder"], **kw)).eval()
    return enc, dec


def test_off_by_default():
    enc = Magvit2Encoder(**SMALL_BACKBONES["Magvit2Encoder"])
    dec = Magvit2Decoder(**SMALL_BACKBONES["Magvit2Decoder"])
    assert enc.head is None and dec.head is None and enc.token_mlp_channels == 0
    assert enc.conv_out.out_channels == 6 and dec.conv_in.in_channels == 6


@pytest.mark.parametrize("tubelet_shortcut", [False, True])
def test_encoder_latent_is_the_mlp_of_the_deep_path_plus_shortcut(tubelet_shortcut):
    enc, dec = mlp_pair(tubelet_shortcut=tubelet_shortcut)
    width = 8 * 4  # the deepest level's channels
    assert isinstance(enc.head, TokenMLP) and isinstance(dec.head, TokenMLP)
    assert (enc.head.in_channels, enc.head.hidden_channels, enc.head.out_channels, enc.head.depth) == (width, 24, 6, 2)
    assert (dec.head.in_channels, dec.head.hidden_channels, dec.head.out_channels, dec.head.depth) == (6, 24, width, 2)
    assert enc.conv_out.out_channels == width and dec.conv_in.in_channels == width
    norms = [m for m in dec.modules() if isinstance(m, AdaptiveGroupNorm)]
    assert norms and all(n.cond_channels == width for n in norms)  # the norms read the MLP's output
    x = torch.randn(1, 3, 9, 16, 16)
    with torch.no_grad():
        head, enc.head = enc.head, None
        pre = enc(x)  # deep path (+ shortcut) at the deepest width
        enc.head = head
        assert pre.shape == (1, width, 3, 2, 2)
        torch.testing.assert_close(enc(x), head(pre))
        z = enc(x)
        full = dec(z)
        head, dec.head = dec.head, None
        torch.testing.assert_close(full, dec.decode(head(z)))  # the rest of the decoder reads the MLP's output
        dec.head = head


@pytest.mark.parametrize("depth", [1, 3])
def test_mlp_models_keep_shapes_and_causality(depth):
    enc, dec = mlp_pair(depth, tubelet_shortcut=True)
    for head in (enc.head, dec.head):  # the depth reaches the MLP
        assert head.depth == depth and sum(isinstance(m, torch.nn.SiLU) for m in head) == depth
    x = torch.randn(1, 3, 17, 16, 16)
    with torch.no_grad():
        z = enc(x)
        assert z.shape == (1, 6, 5, 2, 2) and dec(z).shape == (1, 3, 17, 16, 16)
        assert enc(x[:, :, :1]).shape == (1, 6, 1, 2, 2) and dec(z[:, :, :1]).shape == (1, 3, 1, 16, 16)
    assert_causal_pair(enc, dec, x)


def test_mlp_gets_gradients():
    enc, dec = mlp_pair()
    dec(enc(torch.randn(1, 3, 5, 16, 16))).square().mean().backward()
    for m in (enc.head, dec.head):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.parameters())


def test_loading_is_strict_and_inflation_builds_without_the_mlp():
    from lfq_kit.backbones import Image2dDecoder, Image2dEncoder

    assert Magvit2Encoder.from_2d(Image2dEncoder(**SMALL_BACKBONES["Image2dEncoder"])).head is None
    assert Magvit2Decoder.from_2d(Image2dDecoder(**SMALL_BACKBONES["Image2dDecoder"])).head is None
    plain = Magvit2Encoder(**SMALL_BACKBONES["Magvit2Encoder"])
    enc, dec = mlp_pair()
    with pytest.raises(RuntimeError, match=r"head\.0\.weight"):  # strict loading names what is missing
        enc.load_state_dict(plain.state_dict())
    with pytest.raises(RuntimeError, match=r"head\.0\.weight"):  # ... and what is unexpected
        plain.load_state_dict(enc.state_dict())
    twin = mlp_pair()[0]
    twin.load_state_dict(enc.state_dict())  # same settings: loads, and computes the same
    x = torch.randn(1, 3, 5, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(twin(x), enc(x))
