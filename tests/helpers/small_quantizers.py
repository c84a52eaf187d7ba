"""Small constructor arguments for every built-in quantizer, the list of built-ins and a factory; the contract tests
fail if a registered built-in has no entry here."""

from lfq_kit.quantizers import Quantizer
from lfq_kit.registry import QUANTIZERS

SMALL_QUANTIZERS = {
    "LFQ": {"dim": 6},
    "VQ": {"dim": 6, "codebook_size": 32},
    "FSQ": {"levels": [3, 4, 5]},
    "BSQ": {"dim": 6},
}

BUILTIN = [n for n in QUANTIZERS.names() if QUANTIZERS.get(n).__module__.startswith("lfq_kit.")]
"""Every quantizer lfq-kit registers itself (plugins excluded)."""


def make(name: str) -> Quantizer:
    """The registered quantizer ``name`` built with its small arguments."""
    return QUANTIZERS.get(name)(**SMALL_QUANTIZERS[name])
