"""Metrics of tokenizers, quantizers, generators and classifiers: torchmetrics metrics (DDP-aware through torchmetrics
state sync) and the one PSNR formula."""

from .codebook_usage import CodebookUsage
from .frechet import FrechetVideoDistance, frechet_distance, image_fid, load_feature_extractor
from .multiview import MultiViewAccuracy
from .psnr import frame_psnr, pooled_psnr, psnr_db

__all__ = ["CodebookUsage", "FrechetVideoDistance", "MultiViewAccuracy", "frame_psnr", "frechet_distance", "image_fid",
           "load_feature_extractor", "pooled_psnr", "psnr_db"]
