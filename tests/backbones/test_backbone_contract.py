"""The contract every registered backbone keeps: shapes and clip-length rules (invariant 11), causality
(invariant 10), finite outputs, gradients to every parameter, clear errors, YAML-friendly signatures."""

import inspect
import math

import pytest
import torch
from jsonargparse import ArgumentParser
from small_backbones import SMALL_BACKBONES, changed_frames, wake_zero_parameters

import lfq_kit.backbones  # noqa: F401  (registers the built-in backbones)
from lfq_kit.backbones import BidirectionalTransformer, Decoder, Discriminator, Encoder, VideoViT
from lfq_kit.registry import BACKBONES

BUILTIN = [n for n in BACKBONES.names() if BACKBONES.get(n).__module__.startswith("lfq_kit.")]
ENCODERS = [n for n in BUILTIN if issubclass(BACKBONES.get(n), Encoder)]
DECODERS = [n for n in BUILTIN if issubclass(BACKBONES.get(n), Decoder)]
DISCRIMINATORS = [n for n in BUILTIN if issubclass(BACKBONES.get(n), Discriminator)]
SEQUENCE_MODELS = [n for n in BUILTIN if issubclass(BACKBONES.get(n), BidirectionalTransformer)]
VIDEO_VITS = [n for n in BUILTIN if issubclass(BACKBONES.get(n), VideoViT)]


def make(name: str):
    return BACKBONES.get(name)(**SMALL_BACKBONES[name])


CAUSAL = [n for n in ENCODERS + DECODERS if make(n).causal]


def clip_lengths(model) -> list[int]:
    r = model.temporal_compression
    return [1, 5, 9, 17] if model.causal else [r, 2 * r, 4 * r]


def test_every_builtin_backbone_is_covered_and_classified():
    assert set(BUILTIN) == set(SMALL_BACKBONES)
    assert set(ENCODERS) | set(DECODERS) | set(DISCRIMINATORS) | set(SEQUENCE_MODELS) | set(VIDEO_VITS) == set(BUILTIN)
    assert {"Magvit2Encoder", "Magvit2Decoder", "Image2dEncoder", "Image2dDecoder"} <= set(CAUSAL)


def _schema(cls) -> dict:
    """The arguments (and defaults) jsonargparse's schema of ``cls`` has."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(cls)
    return vars(parser.get_defaults())


@pytest.mark.parametrize("name", BUILTIN)
def test_signatures_are_typed_with_plain_defaults(name):
    """jsonargparse builds configs from __init__: every argument typed, defaults plain values (no modules). A
    preset's ``**kwargs`` are its base's arguments, which jsonargparse resolves through its ``super().__init__``."""
    cls = BACKBONES.get(name)
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            (base,) = cls.__bases__
            assert {"dim", "depth", "num_heads"} < set(inspect.signature(base.__init__).parameters), name
            assert set(inspect.signature(base.__init__).parameters) - {"self"} <= set(_schema(cls)), name
            continue
        assert p.annotation is not inspect.Parameter.empty, p.name
        assert p.default is not inspect.Parameter.empty, p.name
        leaves = p.default if isinstance(p.default, tuple) else (p.default,)
        assert all(isinstance(v, (int, float, bool, str)) for v in leaves), p.name


@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_shapes(name, size):
    enc = make(name)
    for t in clip_lengths(enc):
        z = enc(torch.randn(2, enc.in_channels, t, size, size))
        assert z.shape == (2, enc.out_channels, *enc.latent_shape(t, size, size))
        assert torch.isfinite(z).all()


@pytest.mark.parametrize("name", DECODERS)
def test_decoder_shapes_invert_the_encoder_grid(name):
    dec = make(name)
    enc = BACKBONES.get(name.replace("Decoder", "Encoder"))(**SMALL_BACKBONES[name.replace("Decoder", "Encoder")])
    assert (dec.temporal_compression, dec.spatial_compression, dec.causal) == (
        enc.temporal_compression,
        enc.spatial_compression,
        enc.causal,
    )
    for size in (16, 32):
        for t in clip_lengths(enc):
            latent = enc.latent_shape(t, size, size)
            assert dec.output_shape(*latent) == (t, size, size)
            x = dec(torch.randn(2, dec.in_channels, *latent))
            assert x.shape == (2, dec.out_channels, t, size, size) and torch.isfinite(x).all()


def test_magvit2_clip_lengths_17_9_5_and_an_image():
    enc = make("Magvit2Encoder")
    assert [enc.latent_shape(t, 32, 32)[0] for t in (1, 5, 9, 17)] == [1, 2, 3, 5]
    assert enc.latent_shape(17, 128, 128) == (5, 16, 16)
    assert enc(torch.randn(1, 3, 1, 16, 16)).shape == (1, 6, 1, 2, 2)


@pytest.mark.parametrize(
    "name, shape, message",
    [
        ("Magvit2Encoder", (1, 3, 8, 16, 16), r"needs T = 1 \+ 4k \(1, 5, 9, 13, 17, \.\.\.\) frames, got T = 8"),
        ("Magvit2Encoder", (1, 3, 5, 20, 16), r"H and W divisible by 8, got H × W = 20 × 16"),
        ("Magvit2Encoder", (1, 4, 5, 16, 16), r"expects \(B, C, T, H, W\) with C = 3"),
        ("Magvit2Encoder", (1, 3, 16, 16), r"expects \(B, C, T, H, W\) with C = 3"),
        ("Magvit1Encoder", (1, 3, 1, 16, 16), r"needs T divisible by 4 \(4, 8, 12, 16, \.\.\.\) frames, got T = 1"),
        ("Image2dEncoder", (1, 3, 12, 12), r"divisible by 8"),
        ("Magvit2Decoder", (1, 5, 2, 2, 2), r"with C = 6"),
        ("StyleGANDiscriminator3d", (1, 3, 16, 16), r"expects \(B, C, T, H, W\) with C = 3"),
        ("StyleGANDiscriminator2d", (1, 1, 16, 16), r"with C = 3"),
    ],
)
def test_invalid_inputs_raise_clear_errors(name, shape, message):
    with pytest.raises(ValueError, match=message):
        make(name)(torch.randn(shape))


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="one flag per downsampler"):
        BACKBONES.get("Magvit2Encoder")(channel_multipliers=(1, 2), temporal_downsample=(True, True))
    with pytest.raises(ValueError, match="must divide"):
        BACKBONES.get("Magvit2Decoder")(base_channels=12, num_groups=8)


@pytest.mark.parametrize("name", BUILTIN)
def test_gradients_reach_every_parameter(name):
    model = make(name)
    if name in DISCRIMINATORS:
        x = torch.randn(2, 3, 3, 32, 32) if name.endswith("3d") else torch.randn(2, 3, 32, 32)
    elif name in ENCODERS:
        x = torch.randn(2, 3, clip_lengths(model)[1], 8, 8)
    elif name in SEQUENCE_MODELS:
        x = torch.randn(2, 5, model.dim)
    elif name in VIDEO_VITS:
        x = torch.randn(2, 3, 4, 16, 16)
    else:
        x = torch.randn(2, model.in_channels, 2, 1, 1)
    out = model(x)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", [n for n in CAUSAL if n in ENCODERS])
def test_encoders_are_causal(name):
    """Perturbing input frame t leaves every latent frame j < ceil(t / r) bit-for-bit unchanged."""
    enc = wake_zero_parameters(make(name)).eval()
    r = enc.temporal_compression
    x = torch.randn(1, 3, 17, 16, 16)
    with torch.no_grad():
        z = enc(x)
        for t in range(17):
            x2 = x.clone()
            x2[:, :, t] += torch.randn_like(x2[:, :, t])
            changed = changed_frames(enc(x2), z)
            first = -(-t // r)  # latent frame j reads input frames ≤ r·j
            assert not any(changed[:first]) and changed[first], (t, changed)


@pytest.mark.parametrize("name", [n for n in CAUSAL if n in DECODERS])
def test_decoders_are_causal(name):
    """Perturbing latent frame j leaves every output frame of earlier latent frames (t ≤ r·(j − 1)) unchanged."""
    dec = wake_zero_parameters(make(name)).eval()
    r = dec.temporal_compression
    z = torch.randn(1, dec.in_channels, 5, 2, 2)
    with torch.no_grad():
        x = dec(z)
        for j in range(5):
            z2 = z.clone()
            z2[:, :, j] += torch.randn_like(z2[:, :, j])
            changed = changed_frames(dec(z2), x)
            first = 0 if j == 0 else r * (j - 1) + 1
            assert not any(changed[:first]) and changed[first], (j, changed)


def test_one_adaptive_norm_per_decoder_level_and_an_ablation_switch():
    dec = wake_zero_parameters(make("Magvit2Decoder"))
    assert sum(type(m).__name__ == "AdaptiveGroupNorm" for m in dec.modules()) == len(dec.channel_multipliers)
    plain = BACKBONES.get("Magvit2Decoder")(**SMALL_BACKBONES["Magvit2Decoder"], adaptive_norm=False)
    assert not any(type(m).__name__ == "AdaptiveGroupNorm" for m in plain.modules())
    assert plain(torch.randn(1, 6, 2, 2, 2)).shape == (1, 3, 5, 16, 16)


def test_zero_padding_variant_is_causal_too():
    enc = BACKBONES.get("Magvit2Encoder")(**SMALL_BACKBONES["Magvit2Encoder"], padding_mode="zeros").eval()
    x = torch.randn(1, 3, 5, 16, 16)
    x2 = x.clone()
    x2[:, :, 1] += 1.0
    with torch.no_grad():
        assert changed_frames(enc(x2), enc(x)) == [False, True]


def test_image_models_take_images_and_code_frames_independently():
    enc, dec = make("Image2dEncoder"), make("Image2dDecoder")
    assert (enc.temporal_compression, enc.latent_shape(7, 16, 16)) == (1, (7, 2, 2))
    images = torch.randn(3, 3, 16, 16)
    z = enc(images)
    assert z.shape == (3, 6, 2, 2) and dec(z).shape == (3, 3, 16, 16)
    clip = enc(images.permute(1, 0, 2, 3).unsqueeze(0))  # the 3 images as one clip (1, 3, T=3, H, W)
    torch.testing.assert_close(clip[0].permute(1, 0, 2, 3), z, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 17, 64, 64), (2, 3, 1, 32, 32), (1, 3, 5, 16, 24)])
def test_discriminator_3d_handles_small_and_single_frame_clips(shape):
    d = make("StyleGANDiscriminator3d")
    logits = d(torch.randn(shape))
    assert logits.shape == (shape[0], 1) and torch.isfinite(logits).all()


def test_discriminator_2d_images_and_per_frame_clips():
    d = make("StyleGANDiscriminator2d")
    assert d(torch.randn(2, 3, 32, 32)).shape == (2, 1)
    frames = torch.randn(2, 3, 4, 32, 32)
    per_frame = d(frames)
    assert per_frame.shape == (2, 4)
    torch.testing.assert_close(per_frame[:, 1:2], d(frames[:, :, 1]), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", BUILTIN)
def test_short_class_names_build_from_yaml(name):
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--backbone", type=torch.nn.Module)
    cfg = parser.parse_object({"backbone": {"class_path": name, "init_args": dict(SMALL_BACKBONES[name])}})
    model = parser.instantiate(cfg).backbone
    assert type(model) is BACKBONES.get(name)
    assert math.isclose(sum(p.numel() for p in model.parameters()), sum(p.numel() for p in make(name).parameters()))
