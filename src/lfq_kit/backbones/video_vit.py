"""The video ViT of VideoMAE-style pretraining and action recognition (VideoMAE, arXiv 2203.12602; ViT, arXiv
2010.11929): tubelet embedding, fixed sinusoidal or learned position embeddings, pre-norm timm blocks with drop
path, and a final LayerNorm (or none: VideoMAE's fine-tuned models pool un-normalized tokens, see
``final_norm``). :meth:`VideoViT.forward` encodes every token or only a given subset (the visible
tokens of masked pretraining), so the encoder's cost scales with the tokens it sees.

Presets (YAML ``class_path: VideoViTB`` with any :class:`VideoViT` argument in ``init_args``; they set ``dim``,
``depth`` and ``num_heads`` only, and jsonargparse types the rest from :class:`VideoViT` through ``**kwargs``):
:class:`VideoViTS` (12 × 384, 6 heads), :class:`VideoViTB` (12 × 768, 12 heads; VideoMAE's ViT-B),
:class:`VideoViTL` (24 × 1024, 16 heads), and :class:`VideoViTTiny` (4 × 128, 4 heads) for CPU runs and tests.
Parameter names: ``patch_embed.*`` and ``pos_embed`` (layer 0 of layer-wise lr decay), ``blocks.<i>.*``
(layer ``i + 1``), ``norm.*`` (layer ``depth + 1``); :meth:`VideoViT.layer_id` says which.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from timm.layers import trunc_normal_
from torch import Tensor, nn

from ..registry import BACKBONES
from .sincos import sinusoid_table
from .transformer import run_blocks, transformer_blocks
from .tubelet_embedding import TubeletEmbedding, tubelet_grid

__all__ = ["VideoViT", "VideoViTB", "VideoViTL", "VideoViTS", "VideoViTTiny"]

PositionKind = Literal["sincos", "learned"]


def _init_weights(module: nn.Module) -> None:
    """ViT/VideoMAE initialisation: Xavier-uniform linear weights, zero biases, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


@BACKBONES.register
class VideoViT(nn.Module):
    """Video ViT: ``(B, C, T, H, W)`` float → ``(B, N, dim)`` token features (all ``N = T'·H'·W'`` tokens in
    ``(t, h, w)`` raster order, or the ``M`` tokens named by ``visible``).

    Args:
        clip_size: ``(T, H, W)`` of the input clips (fixes the grid and the position table).
        tubelet_size: frames per tubelet (VideoMAE: 2).
        patch_size: pixels per tubelet along H and W (VideoMAE: 16).
        first_frame_patch: embed frame 0 alone (``1 × p × p``), aligning with a causal tokenizer's grid: 17 × 128
            × 128 with tubelet 4 and patch 8 gives 5 × 16 × 16 tokens, MAGVIT-v2's grid.
        in_channels: pixel channels.
        dim, depth, num_heads, mlp_ratio: transformer width, blocks, heads, MLP expansion.
        drop_path: stochastic-depth rate, increasing linearly over the blocks to this value (fine-tuning: 0.1).
        dropout, attn_dropout: dropout after projections and on attention weights.
        position: ``"sincos"`` (fixed table, VideoMAE) or ``"learned"`` (trunc-normal, std 0.02).
        activation_checkpointing: recompute each block in backward.
        norm_eps: epsilon of every LayerNorm (PyTorch's 1e-5; MCG-NJU VideoMAE ``modeling_pretrain.py`` /
            ``modeling_finetune.py``: 1e-6; transformers ``models/videomae``: ``layer_norm_eps``, 1e-12).
        final_norm: end with a LayerNorm over every token (``norm.*``). VideoMAE's fine-tuned classifiers have
            none (``use_mean_pooling``: ``norm = Identity``, then ``fc_norm`` after pooling, see
            :class:`lfq_kit.models.VideoClassifier` ``pooling: fc_norm``); then the model has no ``norm.*`` keys.

    Attributes:
        grid: ``(T', H', W')``; num_tokens: ``N``; dim, depth.

    Raises:
        ValueError: a clip size the tubelet does not tile, ``dim`` not divisible by ``num_heads``, an unknown
            ``position``; at run time an input of another shape or ``visible`` indices out of range.
    """

    def __init__(
        self,
        clip_size: tuple[int, int, int] = (16, 224, 224),
        tubelet_size: int = 2,
        patch_size: int = 16,
        first_frame_patch: bool = False,
        in_channels: int = 3,
        dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        position: PositionKind = "sincos",
        activation_checkpointing: bool = False,
        norm_eps: float = 1e-5,
        final_norm: bool = True,
    ) -> None:
        super().__init__()
        if min(dim, depth, num_heads) < 1 or dim % num_heads:
            raise ValueError(
                f"need dim, depth, num_heads >= 1 and dim % num_heads == 0, got {dim}, {depth}, {num_heads}"
            )
        if position not in ("sincos", "learned"):
            raise ValueError(f"position must be 'sincos' or 'learned', got {position!r}")
        self.clip_size = tuple(int(v) for v in clip_size)
        self.grid = tubelet_grid(self.clip_size, tubelet_size, patch_size, first_frame_patch)
        self.num_tokens = math.prod(self.grid)
        self.tubelet_size, self.patch_size, self.first_frame_patch = tubelet_size, patch_size, first_frame_patch
        self.in_channels, self.dim, self.depth = in_channels, dim, depth
        self.activation_checkpointing = activation_checkpointing
        self.patch_embed = TubeletEmbedding(in_channels, dim, tubelet_size, patch_size, first_frame_patch)
        if position == "sincos":
            self.register_buffer("pos_embed", sinusoid_table(self.num_tokens, dim), persistent=False)
        else:
            self.pos_embed = nn.Parameter(trunc_normal_(torch.zeros(1, self.num_tokens, dim), std=0.02))
        self.blocks = transformer_blocks(dim, depth, num_heads, mlp_ratio, dropout, attn_dropout, drop_path, norm_eps)
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()
        self.apply(_init_weights)

    def no_weight_decay(self) -> set[str]:
        """Parameters that take no weight decay (timm's convention): a learned position table."""
        return {"pos_embed"}

    def layer_id(self, name: str) -> int:
        """Layer of parameter ``name`` for layer-wise lr decay: 0 embeddings, ``i + 1`` block ``i``, ``depth + 1``
        the final norm (MAE ``util/lr_decay.py``)."""
        if name.startswith(("patch_embed", "pos_embed")):
            return 0
        if name.startswith("blocks."):
            return int(name.split(".")[1]) + 1
        return self.depth + 1

    def embed(self, video: Tensor) -> Tensor:
        """Tubelet tokens plus position embeddings: ``(B, C, T, H, W)`` → ``(B, N, dim)``."""
        if video.ndim != 5 or video.shape[1] != self.in_channels or tuple(video.shape[2:]) != self.clip_size:
            size = ", ".join(map(str, self.clip_size))
            raise ValueError(
                f"{type(self).__name__} expects (B, {self.in_channels}, {size}) clips, got shape {tuple(video.shape)}"
            )
        x = self.patch_embed(video)
        return x + self.pos_embed.to(x.dtype)

    def forward(self, video: Tensor, visible: Tensor | None = None) -> Tensor:
        """Encode ``video`` ``(B, C, T, H, W)``; with ``visible`` ``(B, M)`` int64 token indices in ``[0, N)``,
        only those tokens enter the blocks (the others are never seen). Returns ``(B, N or M, dim)``."""
        x = self.embed(video)
        if visible is not None:
            if visible.ndim != 2 or visible.shape[0] != x.shape[0]:
                raise ValueError(f"visible must be (B={x.shape[0]}, M) token indices, got shape {tuple(visible.shape)}")
            x = x.gather(1, visible[..., None].expand(-1, -1, x.shape[-1]))
        return self.norm(run_blocks(self.blocks, x, self.activation_checkpointing, self.training))


@BACKBONES.register
class VideoViTTiny(VideoViT):
    """Video ViT, 4 blocks × 128, 4 heads (CPU quick starts and tests).

    Every other argument is :class:`VideoViT`'s (``**kwargs``)."""

    def __init__(self, dim: int = 128, depth: int = 4, num_heads: int = 4, **kwargs: Any) -> None:
        super().__init__(dim=dim, depth=depth, num_heads=num_heads, **kwargs)


@BACKBONES.register
class VideoViTS(VideoViT):
    """Video ViT-S: 12 blocks × 384, 6 heads (≈ 22 M parameters).

    Every other argument is :class:`VideoViT`'s (``**kwargs``)."""

    def __init__(self, dim: int = 384, depth: int = 12, num_heads: int = 6, **kwargs: Any) -> None:
        super().__init__(dim=dim, depth=depth, num_heads=num_heads, **kwargs)


@BACKBONES.register
class VideoViTB(VideoViT):
    """Video ViT-B: 12 blocks × 768, 12 heads (≈ 86 M parameters; VideoMAE's encoder).

    Every other argument is :class:`VideoViT`'s (``**kwargs``)."""

    def __init__(self, dim: int = 768, depth: int = 12, num_heads: int = 12, **kwargs: Any) -> None:
        super().__init__(dim=dim, depth=depth, num_heads=num_heads, **kwargs)


@BACKBONES.register
class VideoViTL(VideoViT):
    """Video ViT-L: 24 blocks × 1024, 16 heads (≈ 304 M parameters).

    Every other argument is :class:`VideoViT`'s (``**kwargs``)."""

    def __init__(self, dim: int = 1024, depth: int = 24, num_heads: int = 16, **kwargs: Any) -> None:
        super().__init__(dim=dim, depth=depth, num_heads=num_heads, **kwargs)
