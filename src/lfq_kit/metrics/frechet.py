"""Fréchet distances between feature distributions: FID for images, FVD for videos, with injected extractors.

``FD = ‖μ_r − μ_g‖² + tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2})`` between Gaussians fitted to the features of real and
generated samples (Heusel et al., arXiv 1706.08500; FVD: Unterthiner et al., arXiv 1812.01717, with an I3D
network). lfq-kit never downloads an extractor: FID goes through torchmetrics' ``FrechetInceptionDistance`` with a
feature network you pass (a module or a local TorchScript file), and FVD through :class:`FrechetVideoDistance`
over the features of a video network you pass (e.g. an I3D TorchScript file). Scores computed with different
extractors, resolutions or sample counts are not comparable with each other or with published numbers.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchmetrics import Metric

__all__ = ["FrechetVideoDistance", "frechet_distance", "image_fid", "load_feature_extractor"]


def load_feature_extractor(extractor: nn.Module | str | Path) -> nn.Module:
    """A module as is, or a local file loaded on the CPU in eval mode: a ``torch.export`` program (``.pt2``) or a
    TorchScript file (any other suffix). Gradients are off.

    Raises:
        FileNotFoundError: the file does not exist (the message names it and says it is never downloaded).
    """
    if isinstance(extractor, nn.Module):
        return extractor.eval().requires_grad_(False)
    path = Path(extractor)
    if not path.is_file():
        raise FileNotFoundError(
            f"feature extractor {str(path)!r} not found; lfq-kit never downloads one: pass a local TorchScript file "
            "(for FVD, an I3D network exported with torch.jit) or a module"
        )
    if path.suffix == ".pt2":
        module = torch.export.load(str(path)).module()
    else:
        module = torch.jit.load(str(path), map_location="cpu").eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> Tensor:
    """Fréchet distance of two Gaussians (means ``(F,)``, covariances ``(F, F)``), float64, 0-dim.

    ``tr((Σ₁Σ₂)^{1/2})`` is the sum of the square roots of the eigenvalues of ``Σ₁Σ₂`` (real and non-negative
    for covariance matrices; rounding noise is clamped).
    """
    mu1, mu2, sigma1, sigma2 = (t.double() for t in (mu1, mu2, sigma1, sigma2))
    eigenvalues = torch.linalg.eigvals(sigma1 @ sigma2).real.clamp(min=0)
    return (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * eigenvalues.sqrt().sum()


def image_fid(extractor: nn.Module | str | Path, normalize: bool = True, **kwargs):
    """torchmetrics' ``FrechetInceptionDistance`` over the features of ``extractor``.

    ``extractor`` maps ``(N, 3, H, W)`` images to ``(N, F)`` features (torchmetrics probes ``F`` with one dummy
    batch). With ``normalize`` (default) images are float in ``[0, 1]``; map lfq-kit's ``[−1, 1]`` with
    ``(x + 1) / 2``. ``kwargs`` go to ``FrechetInceptionDistance`` (``reset_real_features``, ...).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    return FrechetInceptionDistance(feature=load_feature_extractor(extractor), normalize=normalize, **kwargs)


class FrechetVideoDistance(Metric):
    """Fréchet distance between the extractor features of real and generated videos, accumulated over batches and
    ranks (sums, sums of outer products and counts in float64, reduced with ``"sum"``).

    ``update(videos, real)`` takes ``(B, 3, T, H, W)`` videos in ``[−1, 1]`` and passes them to the extractor
    unchanged (resize or rescale inside your extractor or before); the extractor returns ``(B, F)`` features.
    :meth:`compute` returns the 0-dim float32 distance.

    Args:
        extractor: a module or the path of a TorchScript file (e.g. I3D; loaded on the CPU, moved with the metric).
        num_features: ``F``, the extractor's feature width.

    Raises:
        FileNotFoundError: a missing extractor file. ValueError: features of another width, or fewer than two
            samples of either set at :meth:`compute`.
    """

    full_state_update = False
    higher_is_better = False
    is_differentiable = False

    def __init__(self, extractor: nn.Module | str | Path, num_features: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.extractor = load_feature_extractor(extractor)
        self.num_features = num_features
        for kind in ("real", "fake"):
            self.add_state(f"{kind}_sum", torch.zeros(num_features, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(
                f"{kind}_outer", torch.zeros(num_features, num_features, dtype=torch.float64), dist_reduce_fx="sum"
            )
            self.add_state(f"{kind}_count", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, videos: Tensor, real: bool) -> None:
        with torch.no_grad():
            features = self.extractor(videos)
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(
                f"the extractor returned features of shape {tuple(features.shape)}, expected (B, {self.num_features})"
            )
        f = features.double()
        kind = "real" if real else "fake"
        setattr(self, f"{kind}_sum", getattr(self, f"{kind}_sum") + f.sum(0))
        setattr(self, f"{kind}_outer", getattr(self, f"{kind}_outer") + f.T @ f)
        setattr(self, f"{kind}_count", getattr(self, f"{kind}_count") + f.shape[0])

    def _gaussian(self, kind: str) -> tuple[Tensor, Tensor]:
        n = int(getattr(self, f"{kind}_count"))
        if n < 2:
            raise ValueError(f"FrechetVideoDistance needs at least 2 {kind} videos, got {n}")
        total, outer = getattr(self, f"{kind}_sum"), getattr(self, f"{kind}_outer")
        mean = total / n
        cov = (outer - n * torch.outer(mean, mean)) / (n - 1)
        return mean, cov

    def compute(self) -> Tensor:
        return frechet_distance(*self._gaussian("real"), *self._gaussian("fake")).float()
