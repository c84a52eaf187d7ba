"""lfq-kit: MAGVIT-v2 components (lookup-free quantization, causal video tokenizers, masked LMs) for Lightning.

The registries list their built-in classes on first use whatever was imported first
(``lfq_kit.BACKBONES.names()`` right after ``import lfq_kit``); see :mod:`lfq_kit.registry`.
"""

from . import quantizers
from .registry import BACKBONES, CALLBACKS, DATAMODULES, MODELS, QUANTIZERS, REGISTRIES

__version__ = "0.1.0"
__all__ = ["BACKBONES", "CALLBACKS", "DATAMODULES", "MODELS", "QUANTIZERS", "REGISTRIES", "quantizers"]
