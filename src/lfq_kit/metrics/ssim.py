"""Multi-scale structural similarity (MS-SSIM, Wang et al. 2003) of frames of any size, on torchmetrics' SSIM.

The standard 5 scales with an 11-pixel window need frames of at least 176 pixels (11 × 2^4). Smaller frames use
the first ``n`` scales that fit (3 at 64 × 64) with their weights renormalized to sum to 1, and frames under 11
pixels a smaller (odd) window; :func:`ms_ssim_scales` says which. Single-scale SSIM is torchmetrics'
``structural_similarity_index_measure`` / ``StructuralSimilarityIndexMeasure``, used as it is.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["frame_ms_ssim", "ms_ssim_scales"]

_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_KERNEL = 11


def ms_ssim_scales(height: int, width: int) -> tuple[int, int]:
    """``(scales, window)`` MS-SSIM uses for ``height × width`` frames: ``(5, 11)`` from 176 pixels, ``(3, 11)``
    at 64."""
    side = min(height, width)
    window = min(_KERNEL, side if side % 2 else side - 1)
    scales = 1
    while scales < len(_BETAS) and side // 2**scales >= window and side // max(1, scales) ** 2 > window - 1:
        scales += 1
    return scales, max(window, 1)


def frame_ms_ssim(prediction: Tensor, target: Tensor, data_range: float) -> Tensor:
    """MS-SSIM (dimensionless, at most 1) of ``(N, C, H, W)`` float frames, averaged over the frames; the scales and
    window follow the frame size (see the module docstring). A 0-dim tensor."""
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim_fn
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim_fn

    scales, window = ms_ssim_scales(*target.shape[-2:])
    if scales == 1:
        return ssim_fn(prediction, target, data_range=data_range, kernel_size=window)
    total = sum(_BETAS[:scales])
    betas = tuple(b / total for b in _BETAS[:scales])
    return ms_ssim_fn(prediction, target, data_range=data_range, kernel_size=window, betas=betas)
