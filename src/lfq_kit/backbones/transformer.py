"""The bidirectional transformer of the masked LM (MaskGIT, arXiv 2202.04200; MAGVIT-v2, arXiv 2310.05737, Sec. 4).

A stack of pre-norm timm ViT blocks (attention through ``F.scaled_dot_product_attention``) and a final LayerNorm
over a sequence of embeddings ``(B, L, dim) → (B, L, dim)``; no mask, every token attends to every token. Token
embeddings, position embeddings and heads belong to the model that uses it (:class:`lfq_kit.models.MaskedLM`).

Presets (MAGVIT-v2, arXiv 2310.05737, Sec. 4; MAGVIT's model sizes): :class:`TransformerB` (MAGVIT-B, 12 × 768, 12
heads) and :class:`TransformerL` (MAGVIT-L, 24 × 1024, 16 heads); small ones for tests and CPU runs:
:class:`TransformerS` (8 × 512, 8 heads) and :class:`TransformerTiny` (4 × 128, 4 heads). In YAML ``class_path:
TransformerB`` or ``BidirectionalTransformer`` with explicit sizes; a preset sets ``dim``, ``depth`` and ``num_heads``
only and takes every other argument of :class:`BidirectionalTransformer` through ``**kwargs`` (typed from it by
jsonargparse, e.g. ``init_args: {dropout: 0.0}``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from ..nn.checkpointing import maybe_checkpoint
from ..registry import BACKBONES

__all__ = [
    "BidirectionalTransformer",
    "TransformerB",
    "TransformerL",
    "TransformerS",
    "TransformerTiny",
    "run_blocks",
    "transformer_blocks",
]


def _init_weights(module: nn.Module) -> None:
    """BERT/MaskGIT initialisation: truncated normal (std 0.02) linear weights, zero biases."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def transformer_blocks(
    dim: int,
    depth: int,
    num_heads: int,
    mlp_ratio: float,
    dropout: float,
    attn_dropout: float,
    drop_path: float,
    norm_eps: float = 1e-5,
) -> nn.ModuleList:
    """``depth`` pre-norm timm ViT blocks (qkv bias), drop-path rate rising linearly from 0 to ``drop_path``.

    ``norm_eps``: the LayerNorms' epsilon (PyTorch's 1e-5; MCG-NJU VideoMAE ``modeling_finetune.py`` /
    ``modeling_pretrain.py`` use 1e-6, transformers ``models/videomae`` its ``layer_norm_eps``, 1e-12)."""
    rates = torch.linspace(0, drop_path, depth).tolist()
    norm = partial(nn.LayerNorm, eps=norm_eps)
    return nn.ModuleList(
        Block(
            dim,
            num_heads,
            mlp_ratio,
            qkv_bias=True,
            proj_drop=dropout,
            attn_drop=attn_dropout,
            drop_path=r,
            norm_layer=norm,
        )
        for r in rates
    )


def run_blocks(blocks: nn.ModuleList, x: Tensor, activation_checkpointing: bool, training: bool) -> Tensor:
    """Apply ``blocks`` in order, recomputing each in backward when ``activation_checkpointing`` (training only)."""
    for block in blocks:
        x = maybe_checkpoint(block, x, enabled=activation_checkpointing and training)
    return x


@BACKBONES.register
class BidirectionalTransformer(nn.Module):
    """Pre-norm transformer encoder: ``(B, L, dim)`` float → ``(B, L, dim)`` (same dtype).

    Args:
        dim: width (multiple of ``num_heads``).
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width as a multiple of ``dim``.
        dropout: dropout after attention and MLP projections (MaskGIT: 0.1).
        attn_dropout: dropout on attention weights.
        drop_path: stochastic depth rate, linearly increasing over the blocks to this value.
        activation_checkpointing: recompute each block in backward (saves activation memory of large presets).

    Raises:
        ValueError: a non-positive size, or ``dim`` not divisible by ``num_heads``.
    """

    def __init__(
        self,
        dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        dropout: float = 0.1,
        attn_dropout: float = 0.1,
        drop_path: float = 0.0,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if min(dim, depth, num_heads) < 1 or dim % num_heads:
            raise ValueError(
                f"need dim, depth, num_heads >= 1 and dim % num_heads == 0, got {dim}, {depth}, {num_heads}"
            )
        self.dim = dim
        self.depth = depth
        self.activation_checkpointing = activation_checkpointing
        self.blocks = transformer_blocks(dim, depth, num_heads, mlp_ratio, dropout, attn_dropout, drop_path)
        self.norm = nn.LayerNorm(dim)
        self.apply(_init_weights)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"{type(self).__name__} expects (B, L, {self.dim}), got shape {tuple(x.shape)}")
        return self.norm(run_blocks(self.blocks, x, self.activation_checkpointing, self.training))


@BACKBONES.register
class TransformerTiny(BidirectionalTransformer):
    """4 blocks × 128, 4 heads (CPU quick starts and tests).

    Every other argument is :class:`BidirectionalTransformer`'s (``**kwargs``)."""

    def __init__(self, dim: int = 128, depth: int = 4, num_heads: int = 4, **kwargs: Any) -> None:
        super().__init__(dim=dim, depth=depth, num_heads=num_heads, **kwargs)


@BACKBONES.register
class TransformerS(BidirectionalTransformer):
    """8 blocks × 512, 8 heads.

    Every other argument is :class:`BidirectionalTransformer`'s (``**kwargs``)."""

    def __init__(self, dim: int = 512, depth: int = 8, num_heads: int = 8, **kwargs: Any) -> None:
        super().__init__(dim=dim, depth=depth, num_heads=num_heads, **kwargs)


@BACKBONES.register
class TransformerB(BidirectionalTransformer):
    """MAGVIT-B: 12 blocks × 768, 12 heads (MAGVIT, arXiv 2212.05199).

    Every other argument is :class:`BidirectionalTransformer`'s (``**kwargs``)."""

    def __init__(self, dim: int = 768, depth: int = 12, num_heads: int = 12, **kwargs: Any) -> None:
        super().__init__(dim=dim, depth=depth, num_heads=num_heads, **kwargs)


@BACKBONES.register
class TransformerL(BidirectionalTransformer):
    """MAGVIT-L: 24 blocks × 1024, 16 heads (≈ 306 M parameters; MAGVIT, arXiv 2212.05199).

    Every other argument is :class:`BidirectionalTransformer`'s (``**kwargs``)."""

    def __init__(self, dim: int = 1024, depth: int = 24, num_heads: int = 16, **kwargs: Any) -> None:
        super().__init__(dim=dim, depth=depth, num_heads=num_heads, **kwargs)
