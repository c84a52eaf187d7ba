"""lfq-kit: MAGVIT-v2 components (lookup-free quantization, causal video tokenizers, masked LMs) for Lightning."""

from . import quantizers
from .registry import BACKBONES, QUANTIZERS

__version__ = "0.1.0"
__all__ = ["BACKBONES", "QUANTIZERS", "quantizers"]
