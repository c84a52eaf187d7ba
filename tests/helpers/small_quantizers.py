"""Small constructor arguments for every built-in quantizer; the contract tests fail if one is missing."""

SMALL_QUANTIZERS = {
    "LFQ": {"dim": 6},
    "VQ": {"dim": 6, "codebook_size": 32},
    "FSQ": {"levels": [3, 4, 5]},
    "BSQ": {"dim": 6},
}
