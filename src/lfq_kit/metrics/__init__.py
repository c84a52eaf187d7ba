"""torchmetrics metrics for tokenizers and quantizers (DDP-aware through torchmetrics state sync)."""

from .codebook_usage import CodebookUsage

__all__ = ["CodebookUsage"]
