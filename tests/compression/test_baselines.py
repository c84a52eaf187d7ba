"""Codec baselines and distortion metrics on a real clip: bpp and PSNR of each codec in their known ranges, crf that
takes effect, odd sizes padded and cropped back, and metric oracles."""

import math

import pytest
import torch

from lfq_kit.compression import rate_distortion as rd
from lfq_kit.compression.baselines import encode_with_codec
from lfq_kit.compression.metrics import ms_ssim, psnr
from lfq_kit.metrics.ssim import ms_ssim_scales


@pytest.fixture(scope="module")
def carphone64():
    return rd.load_clip("sample:carphone_pristine.mp4", resolution=64, frames=17)


@pytest.mark.parametrize(
    "codec, crf, bpp, db",
    [("h264", 30, (0.1, 0.4), (27, 33)), ("hevc", 30, (0.1, 0.4), (27, 34)), ("av1", 40, (0.1, 0.5), (30, 37))],
)
def test_codecs_produce_their_bpp_and_psnr_on_a_real_clip(carphone64, codec, crf, bpp, db):
    frames, fps = carphone64
    result = encode_with_codec(frames, codec, crf, fps)
    assert result.decoded.shape == frames.shape and result.decoded.dtype == torch.uint8
    rate = 8 * result.bytes / frames[..., 0].numel()
    assert bpp[0] < rate < bpp[1] and db[0] < psnr(result.decoded, frames) < db[1]
    assert result.bytes <= result.stream_bytes
    if codec == "h264":  # x264's version/options SEI (about 650 bytes) is not counted
        assert 400 < result.stream_bytes - result.bytes < 1000


def test_a_higher_crf_gives_a_smaller_stream_and_a_lower_psnr(carphone64):
    frames, fps = carphone64
    points = rd.codec_points(frames, fps, "h264", [43, 23, 33])
    assert [p.setting for p in points] == ["crf 23", "crf 33", "crf 43"]
    assert points[0].bytes > points[1].bytes > points[2].bytes and points[0].psnr > points[1].psnr > points[2].psnr


def test_a_crf_that_does_not_take_effect_is_caught(carphone64, monkeypatch):
    frames, fps = carphone64
    real = rd.encode_with_codec
    monkeypatch.setattr(
        rd, "encode_with_codec", lambda f, c, crf, fps: real(f, c, 30, fps)._replace(crf=crf)
    )  # crf ignored
    with pytest.raises(RuntimeError, match="libx264: crf 40 gave .* a higher crf must give a smaller stream"):
        rd.codec_points(frames, fps, "h264", [20, 40])


@pytest.mark.parametrize("codec", ["h264", "hevc", "av1"])
def test_odd_sizes_are_padded_for_yuv420p_and_cropped_back(carphone64, codec):
    frames = carphone64[0][:5, :21, :19].contiguous()  # SVT-AV1 also needs 64 pixels: padded further
    result = encode_with_codec(frames, codec, 20)
    assert result.decoded.shape == (5, 21, 19, 3) and psnr(result.decoded, frames) > 30


def test_psnr_and_ms_ssim_oracles():
    a = torch.full((2, 64, 64, 3), 100, dtype=torch.uint8)
    b = a.clone()
    b[0] += 5  # frame 0: MSE 25 -> 10 log10(255² / 25) dB; frame 1 exact -> 100 dB
    assert psnr(b, a) == pytest.approx((10 * math.log10(255**2 / 25) + 100) / 2)
    noise = torch.randint(0, 255, (3, 64, 64, 3), dtype=torch.uint8)
    assert ms_ssim(noise, noise) == pytest.approx(1.0, abs=1e-5)
    assert ms_ssim(torch.randint(0, 255, (3, 64, 64, 3), dtype=torch.uint8), noise) < 0.2
    assert (
        ms_ssim_scales(64, 64) == (3, 11)
        and ms_ssim_scales(144, 176) == (4, 11)
        and ms_ssim_scales(176, 200) == (5, 11)
    )
    assert ms_ssim_scales(8, 9) == (1, 7)
    with pytest.raises(ValueError, match="need uint8"):
        psnr(a.float(), a)
