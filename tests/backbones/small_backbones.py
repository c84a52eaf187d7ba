"""Tiny constructor arguments for every built-in backbone (the contract tests fail if one is missing), and
helpers shared by the backbone tests."""

import torch
from torch import nn

_AE = {"base_channels": 8, "channel_multipliers": (1, 2, 2, 4), "num_res_blocks": 1, "num_groups": 4}

SMALL_BACKBONES = {
    "Magvit2Encoder": {**_AE, "out_channels": 6},
    "Magvit2Decoder": {**_AE, "in_channels": 6},
    "Magvit1Encoder": {**_AE, "out_channels": 6},
    "Magvit1Decoder": {**_AE, "in_channels": 6},
    "Image2dEncoder": {**_AE, "out_channels": 6},
    "Image2dDecoder": {**_AE, "in_channels": 6},
    "StyleGANDiscriminator3d": {"base_channels": 4, "channel_multipliers": (2, 4, 4, 4, 4)},
    "StyleGANDiscriminator2d": {"base_channels": 4, "channel_multipliers": (2, 4, 4, 4, 4)},
    # sequence models: (B, L, dim) -> (B, L, dim); video ViTs: (B, 3, T, H, W) -> (B, L, dim)
    "BidirectionalTransformer": {"dim": 16, "depth": 2, "num_heads": 2},
    "TransformerTiny": {"dim": 16, "depth": 2, "num_heads": 2},
    "TransformerS": {"dim": 16, "depth": 2, "num_heads": 2},
    "TransformerB": {"dim": 16, "depth": 2, "num_heads": 2},
    "TransformerL": {"dim": 16, "depth": 2, "num_heads": 2},
    "VideoViT": {"clip_size": (4, 16, 16), "tubelet_size": 2, "patch_size": 8, "dim": 16, "depth": 2, "num_heads": 2},
    "VideoViTTiny": {
        "clip_size": (4, 16, 16),
        "tubelet_size": 2,
        "patch_size": 8,
        "dim": 16,
        "depth": 2,
        "num_heads": 2,
    },
    "VideoViTS": {"clip_size": (4, 16, 16), "tubelet_size": 2, "patch_size": 8, "dim": 16, "depth": 2, "num_heads": 2},
    "VideoViTB": {"clip_size": (4, 16, 16), "tubelet_size": 2, "patch_size": 8, "dim": 16, "depth": 2, "num_heads": 2},
    "VideoViTL": {"clip_size": (4, 16, 16), "tubelet_size": 2, "patch_size": 8, "dim": 16, "depth": 2, "num_heads": 2},
}


def wake_zero_parameters(model: nn.Module, std: float = 0.2) -> nn.Module:
    """Give zero-initialized parameters (AdaGN projections) random values, so every path of the model matters."""
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(std=std)
    return model


def changed_frames(y2: torch.Tensor, y: torch.Tensor) -> list[bool]:
    """Per frame of ``(B, C, T, H, W)`` outputs: does any value differ (exactly)?"""
    return (y2 != y).flatten(3).any(-1).any(1).any(0).tolist()


def assert_causal_pair(enc: nn.Module, dec: nn.Module, x: torch.Tensor) -> None:
    """For a ``4×``-in-time causal encoder/decoder pair and a 17-frame clip ``x``: changing frame ``t`` changes
    latent frames ``ceil(t / 4)`` and later only, and changing latent frame ``j`` changes output frames
    ``4(j − 1) + 1`` (0 for ``j = 0``) and later only."""
    with torch.no_grad():
        z = enc(x)
        for t in (0, 4, 5, 16):
            x2 = x.clone()
            x2[:, :, t] += 1.0
            changed = changed_frames(enc(x2), z)
            assert changed.index(True) == -(-t // 4), (t, changed)
        for j in range(z.shape[2]):
            z2 = z.clone()
            z2[:, :, j] += 1.0
            changed = changed_frames(dec(z2), dec(z))
            assert changed.index(True) == (0 if j == 0 else 4 * (j - 1) + 1), (j, changed)
