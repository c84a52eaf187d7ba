"""BlurPool2d / BlurPool3d: binomial filters, constants preserved, single frames not pooled in time."""

import pytest
import torch

from lfq_kit.nn import BlurPool2d, BlurPool3d, binomial_filter


def test_binomial_filters():
    assert binomial_filter(3).tolist() == [0.25, 0.5, 0.25]
    assert binomial_filter(4).tolist() == [1 / 8, 3 / 8, 3 / 8, 1 / 8]
    with pytest.raises(ValueError, match="≥ 2"):
        binomial_filter(1)


@pytest.mark.parametrize("filter_size", [2, 3, 4])
@pytest.mark.parametrize("shape", [(2, 3, 17, 8, 6), (2, 3, 1, 8, 8), (1, 2, 4, 1, 5)])
def test_blur_pool_3d_keeps_constants_and_halves_axes_longer_than_one(shape, filter_size):
    x = torch.full(shape, 0.7)
    y = BlurPool3d(filter_size)(x)
    assert y.shape == (*shape[:2], *(max(n // 2, 1) for n in shape[2:]))
    torch.testing.assert_close(y, torch.full_like(y, 0.7))


def test_blur_pool_2d_shapes_constants_and_nyquist():
    assert BlurPool2d(3)(torch.ones(1, 2, 9, 8)).shape == (1, 2, 4, 4)
    torch.testing.assert_close(BlurPool2d()(torch.full((1, 2, 8, 8), -2.0)), torch.full((1, 2, 4, 4), -2.0))
    checker = (-1.0) ** (torch.arange(16).view(-1, 1) + torch.arange(16))
    y = BlurPool2d(4)(checker.view(1, 1, 16, 16))  # [1, 3, 3, 1] removes the Nyquist frequency
    torch.testing.assert_close(y[..., 1:-1, 1:-1], torch.zeros(1, 1, 6, 6))


def test_blur_pool_rank_errors():
    with pytest.raises(ValueError, match="5-D"):
        BlurPool3d()(torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="4-D"):
        BlurPool2d()(torch.ones(1, 1, 1, 4, 4))
