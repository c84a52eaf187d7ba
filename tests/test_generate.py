"""`lfq-kit generate`: class-conditional samples and frame prediction from a CLI-trained masked LM, written as MP4
files and a PNG grid; the frame-prediction scores against the real frames and the copy-last-frame baseline."""

import math
from pathlib import Path

import av
import pytest
import torch
import yaml
from mlm_checkpoint import DATA  # the clips the session fixture `mlm_ckpt` (tests/conftest.py) trained on
from PIL import Image

from lfq_kit.cli import main
from lfq_kit.commands.generate import frame_prediction_scores


def _frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_class_conditional_samples_are_written(mlm_ckpt, tmp_path, capsys):
    out = tmp_path / "samples"
    assert (
        main(
            [
                "generate",
                "--mlm",
                str(mlm_ckpt),
                "--classes",
                "0",
                "2",
                "--samples-per-class",
                "2",
                "--steps",
                "4",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    videos = sorted(p.name for p in out.glob("*.mp4"))
    assert videos == ["class0_sample0.mp4", "class0_sample1.mp4", "class2_sample0.mp4", "class2_sample1.mp4"]
    assert all(_frames(out / v) == 5 for v in videos)
    assert Image.open(out / "grid.png").size == (5 * 16, 4 * 16)  # a row per sample, a column per frame
    assert not list(out.glob(".*"))  # written atomically: no partial file left
    assert "wrote 4 videos" in capsys.readouterr().out


def test_frame_prediction_prints_scores_against_the_baseline(mlm_ckpt, tmp_path, capsys):
    config = tmp_path / "data.yaml"
    config.write_text(yaml.safe_dump({"data": DATA}))
    out = tmp_path / "predicted"
    assert (
        main(
            [
                "generate",
                "--mlm",
                str(mlm_ckpt),
                "--frame-prediction",
                "--config",
                str(config),
                "--num-clips",
                "3",
                "--steps",
                "4",
                "--output",
                str(out),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "3 condition frames (2 latent), 2 predicted, 3 clips" in text
    for row in ("masked LM", "copy last condition frame", "tokenizer reconstruction"):
        assert f"| {row}" in text
    assert len(list(out.glob("clip*_predicted.mp4"))) == 3 and len(list(out.glob("clip*_real.mp4"))) == 3


def test_frame_prediction_scores_are_per_frame_psnr_and_ssim():
    real = torch.zeros(1, 3, 2, 16, 16)
    noisy = real.clone()
    noisy[:, :, 0] += 0.1  # frame 0: MSE 0.01 -> 26.02 dB; frame 1 exact -> 106.02 dB (MSE floored at 1e-10)
    scores = frame_prediction_scores(noisy, real)
    assert abs(scores.psnr - (10 * math.log10(4 / 0.01) + 10 * math.log10(4 / 1e-10)) / 2) < 1e-3
    assert frame_prediction_scores(real, real).ssim == pytest.approx(1.0)


def test_missing_checkpoint_says_which_command_makes_it(tmp_path):
    with pytest.raises(SystemExit, match="lfq-kit fit --config configs/quickstart_mlm.yaml"):
        main(["generate", "--mlm", str(tmp_path / "none.ckpt"), "--output", str(tmp_path)])
