"""Open-MAGVIT2 weights in lfq-kit reproduce SEED-Voken's own outputs (docs/pretrained.md).

The fixtures (tests/fixtures/interop/open_magvit2_{image,video}_tiny, made by running TencentARC/SEED-Voken's
``improved_model`` / ``improved_video_model`` and ``lookup_free_quantize`` unmodified; provenance in their JSON) hold
the reference weights, inputs and the reference's float64 and float32 latent, quantized latent, indices and output.
Their state dict goes through the converter's code path (the one ``lfq-kit convert open-magvit2`` runs), then
lfq-kit's encoder → LFQ → decoder runs on the same input.
"""

import pytest
import torch
from open_magvit2_files import fixture, fixture_state

from lfq_kit.nn import depth_to_space
from lfq_kit.pretrained.open_magvit2 import open_magvit2_tokenizer
from lfq_kit.pretrained.open_magvit2_layout import to_lfq_order

CASES = [("image", "img"), ("video", "clip"), ("video", "frame")]


@pytest.fixture(scope="module")
def converted():
    return {
        kind: open_magvit2_tokenizer(fixture_state(kind), f"open_magvit2_{kind}_tiny")[0] for kind in ("image", "video")
    }


def _run(model, x, dtype):
    """lfq-kit's pipeline on the fixture input: images go in as one-frame clips, as the tokenizer takes them."""
    gen = model.to(dtype).inference_generator
    clip = x.to(dtype) if x.ndim == 5 else x.to(dtype).unsqueeze(2)
    with torch.no_grad():
        latent = gen.encoder(clip)
        out = gen.quantizer(latent)
        output = gen.decoder(out.quantized)
    if x.ndim == 4:
        return latent[:, :, 0], out.quantized[:, :, 0], out.indices[:, 0], output[:, :, 0]
    return latent, out.quantized, out.indices, output


@pytest.mark.parametrize("kind, name", CASES)
def test_float64_outputs_equal_the_reference_within_1e_10_and_indices_are_identical(converted, kind, name):
    ref = fixture(kind)
    latent, quantized, indices, output = _run(converted[kind], ref[f"{name}.input"], torch.float64)
    for key, value in (("latent", latent), ("quantized", quantized), ("output", output)):
        assert value.dtype == torch.float64
        torch.testing.assert_close(value, ref[f"{name}.fp64.{key}"], rtol=0, atol=1e-10, msg=key)
    assert torch.equal(indices, ref[f"{name}.fp64.indices"])


@pytest.mark.parametrize("kind, name", CASES)
def test_float32_outputs_equal_the_reference_within_1e_4_relative_and_indices_are_identical(converted, kind, name):
    ref = fixture(kind)
    latent, quantized, indices, output = _run(converted[kind], ref[f"{name}.input"], torch.float32)
    for key, value in (("latent", latent), ("quantized", quantized), ("output", output)):
        expected = ref[f"{name}.fp32.{key}"]
        assert (value - expected).abs().max() <= 1e-4 * expected.abs().max(), key
    assert torch.equal(indices, ref[f"{name}.fp32.indices"])


def _their_depth_to_space(y, factors):
    """SEED-Voken's DCR depth-to-space, written from its description: channels split as ``(s_t, s_h, s_w, C)``."""
    st, sh, sw = factors
    b, n, t, h, w = y.shape
    y = y.reshape(b, st, sh, sw, n // (st * sh * sw), t, h, w)
    return y.permute(0, 4, 5, 1, 6, 2, 7, 3).reshape(b, n // (st * sh * sw), t * st, h * sh, w * sw)


@pytest.mark.parametrize("factors", [(2, 2, 2), (1, 2, 2)])
def test_the_upsampler_permutation_maps_their_channel_order_onto_lfq_kits(factors):
    """The video fixture only has spatial (1, 2, 2) upsamplers; the temporal (2, 2, 2) order is checked here."""
    weight, bias = torch.randn(8 * 4, 5, 3, 3, 3, dtype=torch.float64), torch.randn(8 * 4, dtype=torch.float64)
    x = torch.randn(1, 5, 3, 4, 4, dtype=torch.float64)
    theirs = torch.nn.functional.conv3d(x, weight, bias, padding=1)[:, : 4 * factors[0] * 4]
    weight, bias = weight[: 4 * factors[0] * 4], bias[: 4 * factors[0] * 4]
    ours = torch.nn.functional.conv3d(x, to_lfq_order(weight, factors), to_lfq_order(bias, factors), padding=1)
    torch.testing.assert_close(depth_to_space(ours, factors), _their_depth_to_space(theirs, factors), rtol=0, atol=0)


def test_the_converted_models_use_the_open_magvit2_settings(converted):
    image, video = converted["image"].generator, converted["video"].generator
    assert type(image.encoder).__name__ == "Image2dEncoder" and image.encoder.norm_eps == 1e-6
    assert image.decoder.adaptive_norm_variant == "open_magvit2" and image.quantizer.codebook_size == 2**18
    assert type(video.encoder).__name__ == "Magvit2Encoder" and video.encoder.clip_wide_norm
    assert video.decoder.keep_first_subframe and video.encoder.padding_mode == "zeros"
