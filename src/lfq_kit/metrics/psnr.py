"""Peak signal-to-noise ratio, the one formula every PSNR of lfq-kit uses (evaluation, compression, ``generate``).

``PSNR = 10 log10(data_range² / MSE)`` in dB, where ``data_range`` is the span of the pixel values: 2 for pixels
in ``[−1, 1]`` (the models'), 255 for uint8 frames (the codecs'). Two averages, which the literature mixes up:

* per frame (:func:`frame_psnr`): each frame's PSNR from its own MSE, then the caller's mean over frames: the
  convention of tokenizer and codec papers, the figure to compare with them;
* pooled (:func:`pooled_psnr`): the PSNR of the MSE pooled over every pixel; never above the per-frame mean
  (Jensen's inequality: the worst frames dominate the pooled MSE).

Identical frames: the MSE is floored at ``min_mse`` (default ``1e-10``: 106.0 dB at data range 2); with
``min_mse=0`` an exact frame has an infinite PSNR, which a caller may replace by its own convention.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["frame_psnr", "pooled_psnr", "psnr_db"]


def _check(prediction: Tensor, target: Tensor) -> None:
    if prediction.shape != target.shape:
        shapes = f"{tuple(prediction.shape)} and {tuple(target.shape)}"
        raise ValueError(f"PSNR needs a prediction and a target of one shape, got {shapes}")


def psnr_db(mse: Tensor, data_range: float, min_mse: float = 1e-10) -> Tensor:
    """Elementwise PSNR in dB of mean squared errors ``mse`` (any shape and float dtype, kept):
    ``10 log10(data_range² / max(mse, min_mse))``; ``min_mse=0`` gives ``inf`` where ``mse`` is 0."""
    return 10 * (data_range**2 / mse.clamp_min(min_mse)).log10()


def frame_psnr(prediction: Tensor, target: Tensor, data_range: float, min_mse: float = 1e-10) -> Tensor:
    """PSNR in dB of each frame: ``(N, ...)`` frames (any layout after the frame axis, float; computed in their
    dtype) → ``(N,)``, each from the MSE over that frame's values.

    Raises:
        ValueError: the shapes differ.
    """
    _check(prediction, target)
    return psnr_db((prediction - target).square().flatten(1).mean(1), data_range, min_mse)


def pooled_psnr(prediction: Tensor, target: Tensor, data_range: float, min_mse: float = 1e-10) -> Tensor:
    """PSNR in dB of the MSE pooled over every value of ``prediction`` against ``target`` (same shape, float):
    a 0-dim tensor on their device.

    Raises:
        ValueError: the shapes differ.
    """
    _check(prediction, target)
    return psnr_db(F.mse_loss(prediction, target), data_range, min_mse)
