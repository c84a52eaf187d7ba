"""The light decoder of masked video pretraining (VideoMAE, arXiv 2203.12602, Sec. 3.3; MAE, arXiv 2111.06377):
encoder features of the visible tokens are projected to the decoder width, a shared learned mask token fills the
masked positions, fixed sinusoidal position embeddings are added to the whole sequence, a few pre-norm blocks run,
and the features of the masked positions are returned for the target head."""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import Tensor, nn

from .sincos import sinusoid_table
from .transformer import transformer_blocks

__all__ = ["VIDEOMAE_DECODERS", "MaskedDecoder", "videomae_decoder_size"]

VIDEOMAE_DECODERS: dict[int, tuple[int, int]] = {384: (192, 3), 768: (384, 6), 1024: (512, 8), 1280: (640, 8)}
"""VideoMAE's decoder ``(width, heads)`` for each encoder width (its ViT-S, B, L, H pretraining models; 4 blocks)."""


def _heads_for(dim: int) -> int:
    """The most heads of width >= 64 that divide ``dim`` (at least 1)."""
    return max(h for h in range(1, max(1, dim // 64) + 1) if dim % h == 0)


def videomae_decoder_size(encoder_dim: int, dim: int | None = None, num_heads: int | None = None) -> tuple[int, int]:
    """The decoder ``(width, heads)`` for an encoder of width ``encoder_dim``, filling what is None: VideoMAE's
    pairing of :data:`VIDEOMAE_DECODERS` (ViT-S 384 → 192 × 3 heads, ViT-B 768 → 384 × 6), else half the
    encoder width; heads: the table's for that width, else as many 64-wide heads as divide it."""
    table = VIDEOMAE_DECODERS.get(encoder_dim)
    if dim is None:
        dim = table[0] if table is not None else max(1, encoder_dim // 2)
    if num_heads is None:
        num_heads = table[1] if table is not None and table[0] == dim else _heads_for(dim)
    return dim, num_heads


class MaskedDecoder(nn.Module):
    """``(B, M, encoder_dim)`` visible features + indices → ``(B, K, dim)`` features of the ``K`` masked tokens.

    Args:
        num_tokens: ``N``, tokens of the full grid.
        encoder_dim: width of the encoder features.
        dim, depth, num_heads: decoder width, blocks and heads (VideoMAE: 4 blocks; width and heads by encoder,
            :func:`videomae_decoder_size`: 192 × 3 for ViT-S, 384 × 6 for ViT-B).
        mlp_ratio: MLP expansion.
        norm_eps: epsilon of the blocks' LayerNorms (PyTorch's 1e-5; MCG-NJU ``modeling_pretrain.py`` 1e-6;
            transformers ``VideoMAEDecoder`` its ``layer_norm_eps``, 1e-12).
        final_norm_eps: epsilon of the final LayerNorm (None: ``norm_eps``; transformers' ``decoder.norm``: 1e-5).
    """

    def __init__(
        self,
        num_tokens: int,
        encoder_dim: int,
        dim: int = 384,
        depth: int = 4,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        norm_eps: float = 1e-5,
        final_norm_eps: float | None = None,
    ) -> None:
        super().__init__()
        if min(dim, depth, num_heads) < 1 or dim % num_heads:
            raise ValueError(
                f"decoder needs dim, depth, num_heads >= 1 and dim % num_heads == 0, got {dim}, {depth}, {num_heads}"
            )
        self.num_tokens, self.dim = num_tokens, dim
        self.proj = nn.Linear(encoder_dim, dim, bias=False)
        self.mask_token = nn.Parameter(trunc_normal_(torch.zeros(1, 1, dim), std=0.02))
        self.register_buffer("pos_embed", sinusoid_table(num_tokens, dim), persistent=False)
        self.blocks = transformer_blocks(dim, depth, num_heads, mlp_ratio, 0.0, 0.0, 0.0, norm_eps)
        self.norm = nn.LayerNorm(dim, eps=norm_eps if final_norm_eps is None else final_norm_eps)

    def no_weight_decay(self) -> set[str]:
        """Parameters that take no weight decay (timm's convention): the mask token."""
        return {"mask_token"}

    def forward(self, visible_features: Tensor, visible: Tensor, masked: Tensor) -> Tensor:
        """``visible_features`` ``(B, M, encoder_dim)`` at token indices ``visible`` ``(B, M)``; ``masked``
        ``(B, K)`` the other indices → ``(B, K, dim)``."""
        b = visible_features.shape[0]
        x = self.proj(visible_features)
        full = self.mask_token.to(x.dtype).expand(b, self.num_tokens, -1).clone()
        full = full.scatter(1, visible[..., None].expand(-1, -1, self.dim), x)
        full = full + self.pos_embed.to(x.dtype)
        for block in self.blocks:
            full = block(full)
        out = full.gather(1, masked[..., None].expand(-1, -1, self.dim))
        return self.norm(out)
