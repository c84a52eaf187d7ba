"""Fréchet distances against closed forms of two Gaussians; FID through torchmetrics with an injected extractor."""

import math

import pytest
import torch
from torch import nn

from lfq_kit.metrics.frechet import FrechetVideoDistance, frechet_distance, image_fid, load_feature_extractor


def test_frechet_distance_of_diagonal_gaussians_has_the_closed_form():
    mu1, mu2 = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    s1, s2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 1.0])  # variances
    expected = ((mu1 - mu2) ** 2).sum() + ((s1.sqrt() - s2.sqrt()) ** 2).sum()  # 5 + (1 + 1 + 4)
    got = frechet_distance(mu1, torch.diag(s1), mu2, torch.diag(s2))
    assert math.isclose(float(got), float(expected), rel_tol=1e-9) and math.isclose(float(got), 11.0, rel_tol=1e-9)


def test_frechet_distance_is_invariant_to_a_common_rotation():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 4, generator=g), torch.randn(4, 4, generator=g)
    s1, s2 = a @ a.T + torch.eye(4), b @ b.T + torch.eye(4)
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g))
    mu1, mu2 = torch.randn(4, generator=g), torch.randn(4, generator=g)
    d = frechet_distance(mu1, s1, mu2, s2)
    rotated = frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T)
    assert torch.allclose(d, rotated, rtol=1e-8)
    assert abs(float(frechet_distance(mu1, s1, mu1, s1))) < 1e-8


class MeanOverVideo(nn.Module):
    """A stand-in video network: the mean of each channel over time and space (3 features)."""

    def forward(self, videos):
        return videos.mean(dim=(2, 3, 4))


def test_fvd_matches_the_hand_computed_distance_of_two_gaussians():
    g = torch.Generator().manual_seed(0)
    n = 20000
    real = torch.randn(n, 3, generator=g) * torch.tensor([1.0, 2.0, 0.5])
    fake = torch.randn(n, 3, generator=g) * torch.tensor([2.0, 2.0, 0.5]) + torch.tensor([1.0, 0.0, 0.0])
    metric = FrechetVideoDistance(MeanOverVideo(), num_features=3)
    as_video = lambda f: f[:, :, None, None, None].expand(-1, -1, 2, 2, 2)  # noqa: E731 - mean gives f back
    for chunk in range(0, n, 5000):  # several updates accumulate like one
        metric.update(as_video(real[chunk : chunk + 5000]), real=True)
        metric.update(as_video(fake[chunk : chunk + 5000]), real=False)
    # population: means differ by (1, 0, 0), std (1, 2, .5) vs (2, 2, .5): FD = 1 + (2 - 1)^2 = 2
    assert abs(float(metric.compute()) - 2.0) < 0.1
    sample = frechet_distance(
        real.double().mean(0), torch.cov(real.double().T), fake.double().mean(0), torch.cov(fake.double().T)
    )
    assert math.isclose(float(metric.compute()), float(sample), rel_tol=1e-4)


def test_fvd_errors():
    metric = FrechetVideoDistance(MeanOverVideo(), num_features=4)
    with pytest.raises(ValueError, match=r"expected \(B, 4\)"):
        metric.update(torch.zeros(2, 3, 1, 2, 2), real=True)
    with pytest.raises(ValueError, match="at least 2 real"):
        FrechetVideoDistance(MeanOverVideo(), num_features=3).compute()
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_feature_extractor("/nonexistent/i3d.pt")


def test_torchscript_extractor_from_a_local_file(tmp_path):
    path = tmp_path / "extractor.pt"
    torch.jit.script(MeanOverVideo()).save(str(path))
    metric = FrechetVideoDistance(str(path), num_features=3)
    videos = torch.rand(4, 3, 2, 4, 4)
    metric.update(videos, real=True)
    metric.update(videos, real=False)
    assert abs(float(metric.compute())) < 1e-5


class Pixels(nn.Module):
    """A random linear image network: (N, 3, H, W) in [0, 1] or uint8 -> (N, 8) features."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 8)

    def forward(self, x):
        return self.proj(x.float().mean(dim=(2, 3)))


def test_image_fid_uses_the_injected_extractor_and_agrees_with_the_formula():
    torch.manual_seed(0)
    net = Pixels()
    fid = image_fid(net)
    real = torch.rand(64, 3, 8, 8)
    fake = (torch.rand(64, 3, 8, 8) * 0.5).clamp(0, 1)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    with torch.no_grad():
        fr, ff = net(real).double(), net(fake).double()
    expected = frechet_distance(fr.mean(0), torch.cov(fr.T), ff.mean(0), torch.cov(ff.T))
    assert math.isclose(float(fid.compute()), float(expected), rel_tol=1e-3)
