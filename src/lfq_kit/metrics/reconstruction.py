"""Reconstruction metrics of a tokenizer over a whole evaluation set, one instance per stage (val, test).

Two PSNRs, the two averages of :mod:`lfq_kit.metrics.psnr` (computed by torchmetrics' ``PeakSignalNoiseRatio``):

* ``psnr_per_frame``: the mean over every frame of every clip of that frame's PSNR (MSE over ``C × H × W``),
  the convention of tokenizer papers, so it is the figure to compare with them;
* ``psnr_pooled``: the PSNR of the MSE pooled over every pixel of the set (never above the per-frame mean).

Both use data range 2 (pixels in ``[−1, 1]``): ``PSNR = 10 log10(4 / MSE)`` dB; a frame reconstructed
exactly has an infinite PSNR. All states are torchmetrics states, summed or gathered across ranks.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from ..losses.perceptual import frames
from .codebook_usage import CodebookUsage

__all__ = ["ReconstructionMetrics"]


class ReconstructionMetrics(nn.Module):
    """Per-frame and pooled PSNR, SSIM (on frames) and exact codebook usage of an evaluation set.

    Args:
        codebook_size: the quantizer's ``K``, for :class:`~lfq_kit.metrics.CodebookUsage`.

    Attributes (torchmetrics metrics, logged as objects so Lightning computes them at epoch end):
        psnr_per_frame, psnr_pooled, ssim: see the module docstring; dB, dB, dimensionless.
        reconstruction: the pixel MSE pooled over the set (each batch weighted by its pixel count).
        usage: code histogram; :meth:`codebook` gives usage, perplexity and entropy in bits.
    """

    def __init__(self, codebook_size: int) -> None:
        super().__init__()
        self.psnr_per_frame = PeakSignalNoiseRatio(data_range=2.0, reduction="elementwise_mean", dim=(1, 2, 3))
        self.psnr_pooled = PeakSignalNoiseRatio(data_range=2.0)
        self.ssim = StructuralSimilarityIndexMeasure(data_range=2.0)
        self.reconstruction = MeanMetric()
        self.usage = CodebookUsage(codebook_size)

    def update(self, reconstruction: Tensor, video: Tensor, indices: Tensor) -> None:
        """Add a batch: ``(B, C, T, H, W)`` reconstruction and target in ``[−1, 1]``, indices ``(B, *S)``."""
        recon, target = frames(reconstruction).float(), frames(video).float()  # (B·T, C, H, W)
        self.psnr_per_frame.update(recon, target)
        self.psnr_pooled.update(recon, target)
        self.ssim.update(recon, target)
        self.reconstruction.update(F.mse_loss(recon, target), weight=recon.numel())
        self.usage.update(indices)

    def codebook(self) -> dict[str, Tensor]:
        """``{"codebook_usage", "codebook_perplexity", "codebook_entropy_bits"}`` over every rank's indices,
        then reset the histogram (the PSNR and SSIM objects are reset by Lightning after logging)."""
        values = {f"codebook_{k}": v for k, v in self.usage.compute().items()}
        self.usage.reset()
        return values
