"""The architecture of a VideoMAE checkpoint: read from a transformers ``config.json`` (and checked against the
weights), or, for MCG-NJU ``.pth`` files, which carry no configuration, read from the tensors' shapes where they
determine it and taken from the released models' settings where they do not (said in
:attr:`VideoMAEArchitecture.notes`; overridable).

What the weights determine: width, depth, MLP ratio, channels, tubelet and patch size (the tubelet convolution's
kernel), the decoder's width and depth, the number of classes. What they do not: the number of heads and the clip
size (a fixed sin-cos position table is not stored). MCG-NJU's released models (``modeling_pretrain.py``,
``modeling_finetune.py``): ViT-S 384 wide with 6 heads, ViT-B 768 / 12, ViT-L 1024 / 16, ViT-H 1280 / 16;
decoders 192 / 3, 384 / 6, 512 / 8, 640 / 8; 16 × 224 × 224 clips; LayerNorm eps 1e-6.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

from ..backbones.masked_decoder import VIDEOMAE_DECODERS
from .checkpoint_files import LayoutError

__all__ = ["MCG_NJU_HEADS", "VideoMAEArchitecture", "architecture_from_config", "architecture_from_shapes"]

MCG_NJU_HEADS: dict[int, int] = {384: 6, 768: 12, 1024: 16, 1280: 16}
"""Heads of MCG-NJU's released encoders by width (ViT-S, B, L, H)."""
MCG_NJU_CLIP = (16, 224, 224)
MCG_NJU_EPS = 1e-6


@dataclass
class VideoMAEArchitecture:
    """Everything needed to build the lfq-kit modules of a VideoMAE checkpoint.

    Attributes:
        dim, depth, num_heads, mlp_ratio, in_channels, tubelet_size, patch_size, clip_size ``(T, H, W)``:
            the encoder (a :class:`~lfq_kit.backbones.VideoViT`).
        norm_eps: its LayerNorms' epsilon (blocks and final norm).
        decoder_dim, decoder_depth, decoder_heads, decoder_norm_eps, decoder_final_norm_eps: the pretraining
            decoder (depth 0 for a fine-tuned file).
        num_classes, fc_norm_eps: the classifier head of a fine-tuned file (0 for pretraining).
        notes: what was not read from the file but taken from the released models' settings or the caller.
    """

    dim: int
    depth: int
    num_heads: int
    mlp_ratio: float
    in_channels: int
    tubelet_size: int
    patch_size: int
    clip_size: tuple[int, int, int]
    norm_eps: float
    decoder_dim: int = 0
    decoder_depth: int = 0
    decoder_heads: int = 0
    decoder_norm_eps: float = 1e-5
    decoder_final_norm_eps: float = 1e-5
    num_classes: int = 0
    fc_norm_eps: float = 1e-6
    notes: list[str] = field(default_factory=list)


def _count_blocks(tensors: dict[str, Tensor], prefix: str) -> int:
    ids = {int(k[len(prefix) :].split(".")[0]) for k in tensors if k.startswith(prefix)}
    return max(ids) + 1 if ids else 0


def _need(tensors: dict[str, Tensor], key: str, path: Path) -> Tensor:
    if key not in tensors:
        raise LayoutError(f"{str(path)!r} lacks the VideoMAE tensor {key!r} (after renaming to lfq-kit names)")
    return tensors[key]


def architecture_from_shapes(
    tensors: dict[str, Tensor],
    path: Path,
    pretraining: bool,
    num_heads: int | None = None,
    decoder_heads: int | None = None,
    clip_size: tuple[int, int, int] | None = None,
) -> VideoMAEArchitecture:
    """The architecture of an MCG-NJU file from its (renamed) tensors; heads and clip size from the arguments, else
    from the released models' settings (recorded in ``notes``).

    Raises:
        LayoutError: a tensor the shapes are read from is missing, or a width without a known head count and no
            ``num_heads`` / ``decoder_heads`` given (the message says which argument to pass).
    """
    enc = "encoder." if pretraining else "backbone."
    conv = _need(tensors, f"{enc}patch_embed.proj.weight", path)
    dim, in_channels, tubelet, patch = conv.shape[0], conv.shape[1], conv.shape[2], conv.shape[3]
    fc1 = _need(tensors, f"{enc}blocks.0.mlp.fc1.weight", path)
    notes = []
    if num_heads is None:
        if dim not in MCG_NJU_HEADS:
            raise LayoutError(
                f"{str(path)!r}: encoder width {dim} is not one of MCG-NJU's released widths "
                f"{sorted(MCG_NJU_HEADS)}; pass the number of heads (num_heads)"
            )
        num_heads = MCG_NJU_HEADS[dim]
        notes.append(f"heads {num_heads} (MCG-NJU's for width {dim})")
    if clip_size is None:
        clip_size = MCG_NJU_CLIP
        notes.append("clip 16 x 224 x 224 (MCG-NJU's)")
    arch = VideoMAEArchitecture(
        dim,
        _count_blocks(tensors, f"{enc}blocks."),
        num_heads,
        fc1.shape[0] / dim,
        in_channels,
        tubelet,
        patch,
        tuple(clip_size),
        MCG_NJU_EPS,
        notes=notes,
    )
    notes.append("LayerNorm eps 1e-6 (MCG-NJU's code)")
    if pretraining:
        proj = _need(tensors, "decoder.proj.weight", path)
        arch.decoder_dim, arch.decoder_depth = proj.shape[0], _count_blocks(tensors, "decoder.blocks.")
        if decoder_heads is None:
            known = {w: h for w, h in VIDEOMAE_DECODERS.values()}
            if arch.decoder_dim not in known:
                raise LayoutError(
                    f"{str(path)!r}: decoder width {arch.decoder_dim} is not one of MCG-NJU's "
                    f"{sorted(known)}; pass the decoder's number of heads (decoder_heads)"
                )
            decoder_heads = known[arch.decoder_dim]
            notes.append(f"decoder heads {decoder_heads} (MCG-NJU's for width {arch.decoder_dim})")
        arch.decoder_heads = decoder_heads
        arch.decoder_norm_eps = arch.decoder_final_norm_eps = MCG_NJU_EPS
    else:
        arch.num_classes = _need(tensors, "head.weight", path).shape[0]
        arch.fc_norm_eps = MCG_NJU_EPS
    return arch


def _size(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, (int, float)) else (int(value[0]), int(value[1]))


def architecture_from_config(config_path: Path, pretraining: bool) -> tuple[VideoMAEArchitecture, dict[str, Any]]:
    """The architecture of a transformers folder from its ``config.json`` (``VideoMAEConfig``); returns it and the
    raw config. The weights are checked against it afterwards (shapes and keys).

    Raises:
        LayoutError: an unreadable config, a missing field, a ``model_type`` other than ``videomae``, an
            activation other than exact GELU, or no mean pooling in a classifier (``use_mean_pooling: false``
            classifies the first token, which lfq-kit does not do).
    """
    try:
        config = json.loads(config_path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise LayoutError(f"{str(config_path)!r} is not a readable JSON config: {err}") from err
    if config.get("model_type") != "videomae":
        raise LayoutError(f"{str(config_path)!r} has model_type {config.get('model_type')!r}, not 'videomae'")
    if config.get("hidden_act", "gelu") != "gelu":
        raise LayoutError(f"{str(config_path)!r}: hidden_act {config['hidden_act']!r}; only exact 'gelu' is supported")
    if not pretraining and not config.get("use_mean_pooling", True):
        raise LayoutError(
            f"{str(config_path)!r}: use_mean_pooling false (first-token classification) is not "
            "supported; lfq-kit pools with fc_norm(mean(tokens))"
        )
    try:
        dim = int(config["hidden_size"])
        arch = VideoMAEArchitecture(
            dim,
            int(config["num_hidden_layers"]),
            int(config["num_attention_heads"]),
            int(config["intermediate_size"]) / dim,
            int(config.get("num_channels", 3)),
            int(config["tubelet_size"]),
            int(config["patch_size"]),
            (int(config["num_frames"]), *_size(config["image_size"])),
            float(config.get("layer_norm_eps", 1e-12)),
        )
        if pretraining:
            arch.decoder_dim = int(config["decoder_hidden_size"])
            arch.decoder_depth = int(config["decoder_num_hidden_layers"])
            arch.decoder_heads = int(config["decoder_num_attention_heads"])
            arch.decoder_norm_eps, arch.decoder_final_norm_eps = arch.norm_eps, 1e-5  # VideoMAEDecoder's norm
            if int(config.get("decoder_intermediate_size", 4 * arch.decoder_dim)) != 4 * arch.decoder_dim:
                raise LayoutError(f"{str(config_path)!r}: decoder_intermediate_size must be 4 x decoder_hidden_size")
        else:
            arch.fc_norm_eps = 1e-5  # VideoMAEForVideoClassification's fc_norm: nn.LayerNorm default
            arch.num_classes = len(config.get("id2label") or {})  # 0: none listed, the weights tell
    except KeyError as err:
        raise LayoutError(f"{str(config_path)!r} lacks the VideoMAE config field {err.args[0]!r}") from err
    return arch, config
