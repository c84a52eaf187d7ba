"""Quantizers sharing one contract (:class:`Quantizer` → :class:`QuantizerOutput`)."""

from .base import Quantizer, QuantizerOutput, straight_through
from .bsq import BSQ
from .fsq import FSQ
from .lfq import LFQ
from .vq import VQ

__all__ = ["BSQ", "FSQ", "LFQ", "VQ", "Quantizer", "QuantizerOutput", "straight_through"]
