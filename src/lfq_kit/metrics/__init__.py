"""torchmetrics metrics for tokenizers, quantizers and generators (DDP-aware through torchmetrics state sync)."""

from .codebook_usage import CodebookUsage
from .frechet import FrechetVideoDistance, frechet_distance, image_fid, load_feature_extractor

__all__ = ["CodebookUsage", "FrechetVideoDistance", "frechet_distance", "image_fid", "load_feature_extractor"]
