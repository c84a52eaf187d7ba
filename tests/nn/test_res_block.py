"""ResBlock: skip projection, pluggable conv/norm layers, causality (invariant 10)."""

from functools import partial

import pytest
import torch
from torch import nn

from lfq_kit.nn import AdaptiveGroupNorm, FrameGroupNorm, ResBlock, SameConv2d


def test_identity_skip_or_projection():
    same = ResBlock(8, num_groups=4)
    assert isinstance(same.skip, nn.Identity) and same(torch.randn(1, 8, 3, 4, 4)).shape == (1, 8, 3, 4, 4)
    wider = ResBlock(8, 16, num_groups=4)
    assert wider.skip.kernel_size == (1, 1, 1) and wider(torch.randn(1, 8, 3, 4, 4)).shape == (1, 16, 3, 4, 4)
    assert [type(m) for m in (same.norm1, same.norm2)] == [FrameGroupNorm, FrameGroupNorm]


def test_image_variant():
    block = ResBlock(4, 8, num_groups=2, conv_layer=SameConv2d)
    assert block(torch.randn(2, 4, 5, 6)).shape == (2, 8, 5, 6)


def changed_frames(y2: torch.Tensor, y: torch.Tensor) -> list[bool]:
    return (y2 != y).flatten(3).any(-1).any(1).any(0).tolist()


@pytest.mark.parametrize("adaptive", [False, True])
def test_res_block_is_causal(adaptive):
    norm = partial(AdaptiveGroupNorm, cond_channels=3) if adaptive else FrameGroupNorm
    block = ResBlock(4, 8, num_groups=2, norm_layer=norm)
    for p in block.parameters():
        nn.init.normal_(p, std=0.3)  # AdaGN starts at zero: give its condition path a real effect
    x, c = torch.randn(1, 4, 7, 4, 4), torch.randn(1, 3, 7, 2, 2)
    y = block(x, c)
    for t in range(7):
        x2, c2 = x.clone(), c.clone()
        x2[:, :, t] += 1.0
        changed = changed_frames(block(x2, c), y)
        assert not any(changed[:t]) and changed[t]
        if adaptive:
            c2[:, :, t] += 1.0
            changed = changed_frames(block(x, c2), y)
            assert not any(changed[:t]) and changed[t]


def test_conditioned_norm_needs_a_condition():
    block = ResBlock(4, num_groups=2, norm_layer=partial(AdaptiveGroupNorm, cond_channels=3))
    with pytest.raises(ValueError, match="needs a condition"):
        block(torch.randn(1, 4, 2, 4, 4))
