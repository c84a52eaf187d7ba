"""Distortion of decoded frames against the originals, for rate–distortion curves: PSNR, MS-SSIM and LPIPS.

All take uint8 ``(T, H, W, 3)`` RGB frames of the original area (padding already cropped).

- PSNR: the mean over frames of per-frame PSNR (dB, peak 255; :func:`lfq_kit.metrics.psnr.frame_psnr`), the papers'
  convention; a frame decoded exactly counts as 100 dB.
- MS-SSIM (Wang et al. 2003; :func:`lfq_kit.metrics.ssim.frame_ms_ssim`): 5 scales need frames of at least 176
  pixels; smaller frames use fewer scales (:func:`lfq_kit.metrics.ssim.ms_ssim_scales` says which).
- LPIPS (Zhang et al. 2018; :class:`lfq_kit.losses.LPIPSLoss`): needs the backbone's weights as a local file; without
  one it is skipped (None) and the caller says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
from torch import Tensor

from ..metrics.psnr import frame_psnr
from ..metrics.ssim import frame_ms_ssim

__all__ = ["Distortion", "distortion", "lpips_weights", "ms_ssim", "psnr"]

# torchvision's file names of the LPIPS backbones, looked for in torch's hub cache (never downloaded here)
_LPIPS_FILES = {
    "alex": "alexnet-owt-7be5be79.pth",
    "vgg": "vgg16-397923af.pth",
    "squeeze": "squeezenet1_1-b8a52dc0.pth",
}


class Distortion(NamedTuple):
    """PSNR (dB), MS-SSIM (in [0, 1]) and LPIPS (lower is better; None when skipped)."""

    psnr: float
    ms_ssim: float
    lpips: float | None


def _check(decoded: Tensor, original: Tensor) -> None:
    if decoded.shape != original.shape or decoded.dtype != torch.uint8 or original.dtype != torch.uint8:
        raise ValueError(
            f"need uint8 (T, H, W, 3) frames of one shape, got {decoded.dtype} {tuple(decoded.shape)} "
            f"and {original.dtype} {tuple(original.shape)}"
        )


def psnr(decoded: Tensor, original: Tensor) -> float:
    """Mean of per-frame PSNR in dB (peak 255; an exact frame counts 100 dB)."""
    _check(decoded, original)
    per_frame = frame_psnr(decoded.double(), original.double(), data_range=255.0, min_mse=0.0)
    return float(per_frame.nan_to_num(posinf=100.0).mean())


def ms_ssim(decoded: Tensor, original: Tensor) -> float:
    """MS-SSIM over the frames (:func:`lfq_kit.metrics.ssim.frame_ms_ssim`: fewer scales for small frames)."""
    _check(decoded, original)
    p = decoded.permute(0, 3, 1, 2).float() / 255  # float32: 10x faster than float64, same to 1e-6
    t = original.permute(0, 3, 1, 2).float() / 255
    return float(frame_ms_ssim(p, t, data_range=1.0))


def lpips_weights(net_type: str = "alex", weights: str | None = None) -> str | None:
    """The local weights file for LPIPS: ``weights`` when given, else torchvision's file in torch's hub cache when
    present, else None (LPIPS is then skipped).

    Raises:
        FileNotFoundError: ``weights`` given but missing.
    """
    if weights is not None:
        if not Path(weights).is_file():
            raise FileNotFoundError(f"LPIPS weights {weights!r} not found")
        return weights
    cached = Path(torch.hub.get_dir()) / "checkpoints" / _LPIPS_FILES[net_type]
    return str(cached) if cached.is_file() else None


def distortion(decoded: Tensor, original: Tensor, lpips: object | None = None) -> Distortion:
    """PSNR, MS-SSIM and (with an :class:`~lfq_kit.losses.LPIPSLoss` ``lpips``) LPIPS of ``decoded`` frames."""
    score = None
    if lpips is not None:
        with torch.no_grad():
            to_video = lambda x: x.permute(3, 0, 1, 2)[None].float() / 127.5 - 1  # noqa: E731  (1, 3, T, H, W)
            score = float(lpips(to_video(decoded), to_video(original)))
    return Distortion(psnr(decoded, original), ms_ssim(decoded, original), score)
