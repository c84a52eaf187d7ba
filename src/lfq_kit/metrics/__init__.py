"""Metrics of tokenizers, quantizers, generators and classifiers: torchmetrics metrics (DDP-aware through torchmetrics
state sync), PSNR and MS-SSIM, a tokenizer's reconstruction metrics over an evaluation set."""

from .codebook_usage import CodebookUsage
from .frechet import FrechetVideoDistance, frechet_distance, image_fid, load_feature_extractor
from .multiview import MultiViewAccuracy
from .psnr import frame_psnr, pooled_psnr, psnr_db
from .reconstruction import ReconstructionMetrics
from .ssim import frame_ms_ssim, ms_ssim_scales

__all__ = [
    "CodebookUsage",
    "FrechetVideoDistance",
    "MultiViewAccuracy",
    "ReconstructionMetrics",
    "frame_ms_ssim",
    "frame_psnr",
    "frechet_distance",
    "image_fid",
    "load_feature_extractor",
    "ms_ssim_scales",
    "pooled_psnr",
    "psnr_db",
]
