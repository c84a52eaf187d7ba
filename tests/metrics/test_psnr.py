"""lfq_kit.metrics.psnr: the one PSNR formula, checked by hand and against the values the three call sites it
replaced (compression, the tokenizer's train/psnr, ``generate``) gave on one fixed example."""

import math

import pytest
import torch

from lfq_kit.commands.generate import frame_prediction_scores
from lfq_kit.compression.metrics import psnr as codec_psnr
from lfq_kit.metrics import frame_psnr, pooled_psnr, psnr_db


def _example() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 4, 8, 8, generator=g) * 2 - 1
    pred = real + 0.1 * torch.randn(2, 3, 4, 8, 8, generator=g)
    pred[0, :, 1] = real[0, :, 1]  # one exact frame
    a = (torch.rand(3, 8, 8, 3, generator=g) * 255).round().to(torch.uint8)
    b = a.clone()
    b[0] = b[0] // 2
    b[2, 0, 0, 0] += 1
    return pred, real, b, a


def test_known_values_in_db_and_the_identical_frame_convention():
    mse = torch.tensor([1.0, 0.04, 0.0])
    assert psnr_db(mse, 2.0).tolist() == pytest.approx([10 * math.log10(4), 10 * math.log10(100), 106.0206], abs=1e-4)
    assert psnr_db(mse, 2.0, min_mse=0.0)[2] == math.inf
    frames = torch.zeros(2, 3, 4, 4)
    noisy = frames.clone()
    noisy[0] += 0.5  # MSE 0.25 in frame 0, frame 1 exact
    expected = [pytest.approx(10 * math.log10(255**2 / 0.25)), math.inf]
    assert frame_psnr(noisy, frames, 255.0, min_mse=0.0).tolist() == expected
    assert float(pooled_psnr(noisy, frames, 2.0)) == pytest.approx(10 * math.log10(4 / 0.125))
    with pytest.raises(ValueError, match="one shape"):
        frame_psnr(frames, frames[:1], 2.0)


def test_the_former_call_sites_give_the_numbers_they_gave_before():
    pred, real, decoded, original = _example()
    # values of the three hand-written formulas this module replaced, on this example
    train_psnr = pooled_psnr(pred.float().clamp(-1, 1), real.float(), 2.0)  # the tokenizer's train/psnr
    assert float(train_psnr) == pytest.approx(27.070232391357422, abs=1e-5)
    assert frame_prediction_scores(pred, real).psnr == pytest.approx(36.43535614013672, abs=1e-5)
    assert codec_psnr(decoded, original) == pytest.approx(60.61678484176358, abs=1e-9)
