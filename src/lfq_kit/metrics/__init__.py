"""torchmetrics metrics for tokenizers, quantizers and generators (DDP-aware through torchmetrics state sync)."""

from .codebook_usage import CodebookUsage
from .frechet import FrechetVideoDistance, frechet_distance, image_fid, load_feature_extractor
from .psnr import frame_psnr, pooled_psnr, psnr_db

__all__ = ["CodebookUsage", "FrechetVideoDistance", "frame_psnr", "frechet_distance", "image_fid", "load_feature_extractor",
           "pooled_psnr", "psnr_db"]
