"""FrameGroupNorm and AdaptiveGroupNorm: per-frame statistics, causal conditioning in time (invariant 10)."""

import pytest
import torch
from torch import nn

from lfq_kit.nn import AdaptiveGroupNorm, FrameGroupNorm, causal_frame_index


def test_frame_group_norm_equals_group_norm_on_each_frame():
    norm = FrameGroupNorm(8, num_groups=4)
    nn.init.normal_(norm.weight)
    nn.init.normal_(norm.bias)
    reference = nn.GroupNorm(4, 8)
    reference.load_state_dict(norm.state_dict())
    x = torch.randn(2, 8, 5, 6, 6) * torch.arange(1, 6).view(1, 1, 5, 1, 1)  # frames with different scales
    y = norm(x)
    for t in range(5):
        torch.testing.assert_close(y[:, :, t], reference(x[:, :, t]))
    torch.testing.assert_close(norm(x[:, :, 0]), reference(x[:, :, 0]))  # an image is one frame


def test_frame_group_norm_only_touches_the_perturbed_frame():
    norm = FrameGroupNorm(4, num_groups=2)
    x = torch.randn(1, 4, 6, 3, 3)
    for t in range(6):
        x2 = x.clone()
        x2[:, :, t] *= 5.0
        x2[:, :, t] += 1.0
        changed = (norm(x2) != norm(x)).flatten(3).any(-1).any(1).any(0)
        assert changed.tolist() == [i == t for i in range(6)]


def test_frame_group_norm_errors():
    with pytest.raises(ValueError, match="must divide"):
        FrameGroupNorm(6, num_groups=4)
    with pytest.raises(ValueError, match=r"expects \(B, 4"):
        FrameGroupNorm(4, num_groups=2)(torch.randn(1, 3, 2, 2, 2))


@pytest.mark.parametrize(
    "num_out, num_in, expected",
    [
        (17, 5, [0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4]),  # ceil(t / 4)
        (9, 5, [0, 1, 1, 2, 2, 3, 3, 4, 4]),  # ceil(t / 2)
        (5, 5, [0, 1, 2, 3, 4]),
        (5, 1, [0, 0, 0, 0, 0]),
        (1, 1, [0]),
    ],
)
def test_causal_frame_index_maps_each_frame_to_the_latent_block_holding_it(num_out, num_in, expected):
    assert causal_frame_index(num_out, num_in).tolist() == expected


def test_causal_frame_index_refuses_more_condition_than_feature_frames():
    with pytest.raises(ValueError, match="cannot causally resize 5"):
        causal_frame_index(3, 5)


def random_adagn(channels=8, cond=3, groups=4) -> AdaptiveGroupNorm:
    norm = AdaptiveGroupNorm(channels, cond, num_groups=groups)
    nn.init.normal_(norm.proj.weight)
    nn.init.normal_(norm.proj.bias)
    return norm


def test_adaptive_group_norm_formula():
    norm = random_adagn()
    x, c = torch.randn(2, 8, 9, 4, 4), torch.randn(2, 3, 3, 2, 2)
    idx = causal_frame_index(9, 3)
    c_up = c[:, :, idx].repeat_interleave(2, 3).repeat_interleave(2, 4)
    gamma, beta = norm.proj(c_up.movedim(1, -1)).movedim(-1, 1).chunk(2, 1)
    expected = FrameGroupNorm(8, 4, affine=False)(x) * (1 + gamma) + beta
    torch.testing.assert_close(norm(x, c), expected)


def test_adaptive_group_norm_starts_as_plain_affine_free_group_norm():
    norm = AdaptiveGroupNorm(8, 3, num_groups=4)
    x = torch.randn(2, 8, 5, 4, 4)
    torch.testing.assert_close(norm(x, torch.randn(2, 3, 2, 1, 1)), FrameGroupNorm(8, 4, affine=False)(x))
    assert norm(x[:, :, 0], torch.randn(2, 3, 1, 1)).shape == (2, 8, 4, 4)  # images


def test_adaptive_group_norm_is_causal_in_features_and_condition():
    norm = random_adagn()
    x, c = torch.randn(1, 8, 9, 4, 4), torch.randn(1, 3, 3, 2, 2)  # r = 4
    y = norm(x, c)
    for t in range(9):
        x2 = x.clone()
        x2[:, :, t] += 1.0
        changed = (norm(x2, c) != y).flatten(3).any(-1).any(1).any(0)
        assert changed.tolist() == [i == t for i in range(9)]
    for j in range(3):
        c2 = c.clone()
        c2[:, :, j] += 1.0
        changed = (norm(x, c2) != y).flatten(3).any(-1).any(1).any(0)
        assert changed.tolist() == [i in ([0] if j == 0 else range(4 * j - 3, 4 * j + 1)) for i in range(9)]


def test_adaptive_group_norm_errors():
    norm = AdaptiveGroupNorm(8, 3, num_groups=4)
    with pytest.raises(ValueError, match=r"condition \(B, 3"):
        norm(torch.randn(1, 8, 3, 4, 4), torch.randn(1, 2, 1, 2, 2))
    with pytest.raises(ValueError, match="cannot causally resize"):
        norm(torch.randn(1, 8, 2, 4, 4), torch.randn(1, 3, 3, 2, 2))
