"""VideoMAE checkpoint layouts → lfq-kit key names (used by :mod:`lfq_kit.pretrained.videomae`).

Three layouts hold the same weights (VideoMAE, arXiv 2203.12602):

- MCG-NJU/VideoMAE ``modeling_pretrain.py`` (``.pth``, pretraining): ``encoder.{patch_embed.proj, blocks.i, norm}``,
  ``encoder_to_decoder``, ``mask_token``, ``decoder.{blocks.i, norm, head}``.
- MCG-NJU/VideoMAE ``modeling_finetune.py`` (``.pth``, fine-tuned, ``use_mean_pooling``): ``patch_embed.proj``,
  ``blocks.i``, ``fc_norm``, ``head`` (no ``norm``).
- transformers ``models/videomae`` (``VideoMAEForPreTraining`` / ``VideoMAEForVideoClassification``):
  ``videomae.embeddings.patch_embeddings.projection``, ``videomae.encoder.layer.i.*``, ``videomae.layernorm``,
  ``fc_norm``, ``classifier``, ``encoder_to_decoder``, ``mask_token``, ``decoder.{decoder_layers.i, norm, head}``.

The blocks are timm ViT blocks in all three except the attention's input projection: MCG-NJU has one ``qkv``
weight with separate ``q_bias`` / ``v_bias`` (no key bias), transformers separate ``query`` / ``key`` / ``value``
weights with ``q_bias`` / ``v_bias`` on disk (transformers 5 names them ``query.bias`` / ``value.bias`` in memory).
lfq-kit's block has one ``qkv`` with a bias: ``qkv.bias = cat(q_bias, 0, v_bias)`` gives exactly the same output
(a key bias would not change the attention anyway: it adds the same amount to every key's score).

Targets: pretraining files map onto :class:`~lfq_kit.models.VideoMAEPretraining` (``encoder.*``, ``decoder.*``,
the pixel head ``head.*``), fine-tuned files onto :class:`~lfq_kit.models.VideoClassifier` (``backbone.*``,
``fc_norm.*``, ``head.*``).
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

import torch
from torch import Tensor

__all__ = ["LayoutKind", "RenamedState", "rename_videomae_keys"]

LayoutKind = Literal["mcg-pretrain", "mcg-finetune", "hf-pretrain", "hf-finetune"]

_HF_BLOCK = {
    "layernorm_before": "norm1",
    "attention.output.dense": "attn.proj",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}
_HF_QKV = {
    "attention.attention.query.weight": "qw",
    "attention.attention.key.weight": "kw",
    "attention.attention.value.weight": "vw",
    "attention.attention.q_bias": "qb",
    "attention.attention.query.bias": "qb",
    "attention.attention.key.bias": "kb",
    "attention.attention.v_bias": "vb",
    "attention.attention.value.bias": "vb",
}
_MCG_BLOCK = ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
_MCG_QKV = {"attn.q_bias": "qb", "attn.v_bias": "vb"}

# (source pattern, lfq-kit target with {0} = the first group, block layout or None) per layout; a block rule's
# pattern captures (block index, name inside the block)
_RULES: dict[LayoutKind, list[tuple[str, str, str | None]]] = {
    "mcg-pretrain": [
        (r"encoder\.patch_embed\.proj\.(weight|bias)", "encoder.patch_embed.proj.{0}", None),
        (r"encoder\.pos_embed", "encoder.pos_embed", None),
        (r"encoder\.blocks\.(\d+)\.(.+)", "encoder.blocks.{0}.", "mcg"),
        (r"encoder\.norm\.(weight|bias)", "encoder.norm.{0}", None),
        (r"encoder_to_decoder\.weight", "decoder.proj.weight", None),
        (r"mask_token", "decoder.mask_token", None),
        (r"decoder\.blocks\.(\d+)\.(.+)", "decoder.blocks.{0}.", "mcg"),
        (r"decoder\.norm\.(weight|bias)", "decoder.norm.{0}", None),
        (r"decoder\.head\.(weight|bias)", "head.{0}", None),
    ],
    "mcg-finetune": [
        (r"patch_embed\.proj\.(weight|bias)", "backbone.patch_embed.proj.{0}", None),
        (r"pos_embed", "backbone.pos_embed", None),
        (r"blocks\.(\d+)\.(.+)", "backbone.blocks.{0}.", "mcg"),
        (r"fc_norm\.(weight|bias)", "fc_norm.{0}", None),
        (r"head\.(weight|bias)", "head.{0}", None),
    ],
    "hf-pretrain": [
        (r"videomae\.embeddings\.patch_embeddings\.projection\.(weight|bias)", "encoder.patch_embed.proj.{0}", None),
        (r"videomae\.encoder\.layer\.(\d+)\.(.+)", "encoder.blocks.{0}.", "hf"),
        (r"videomae\.layernorm\.(weight|bias)", "encoder.norm.{0}", None),
        (r"encoder_to_decoder\.weight", "decoder.proj.weight", None),
        (r"mask_token", "decoder.mask_token", None),
        (r"decoder\.decoder_layers\.(\d+)\.(.+)", "decoder.blocks.{0}.", "hf"),
        (r"decoder\.norm\.(weight|bias)", "decoder.norm.{0}", None),
        (r"decoder\.head\.(weight|bias)", "head.{0}", None),
    ],
    "hf-finetune": [
        (r"videomae\.embeddings\.patch_embeddings\.projection\.(weight|bias)", "backbone.patch_embed.proj.{0}", None),
        (r"videomae\.encoder\.layer\.(\d+)\.(.+)", "backbone.blocks.{0}.", "hf"),
        (r"fc_norm\.(weight|bias)", "fc_norm.{0}", None),
        (r"classifier\.(weight|bias)", "head.{0}", None),
    ],
}


class RenamedState(NamedTuple):
    """A source state dict under lfq-kit names.

    Attributes:
        tensors: lfq-kit key → tensor (``qkv`` assembled).
        unmatched: source keys no rule of the layout names (an error for the caller to report).
        missing: source keys a block needs but the file lacks (e.g. ``...value.weight``, ``...v_bias``).
        used: number of source tensors taken.
    """

    tensors: dict[str, Tensor]
    unmatched: list[str]
    missing: list[str]
    used: int


def _block_part(kind: str, local: str) -> tuple[str, str] | None:
    """``("copy", lfq-kit name)`` or ``("qkv", part)`` for a name inside a block, None if unknown."""
    if kind == "mcg":
        if local in _MCG_QKV:
            return "qkv", _MCG_QKV[local]
        module, _, leaf = local.rpartition(".")
        return ("copy", local) if module in _MCG_BLOCK and leaf in ("weight", "bias") else None
    if local in _HF_QKV:
        return "qkv", _HF_QKV[local]
    module, _, leaf = local.rpartition(".")
    return ("copy", f"{_HF_BLOCK[module]}.{leaf}") if module in _HF_BLOCK and leaf in ("weight", "bias") else None


def _assemble_qkv(
    prefix: str, parts: dict[str, Tensor], source: str, out: dict[str, Tensor], missing: list[str]
) -> None:
    """``qkv.weight`` from q/k/v weights (transformers) and ``qkv.bias = cat(q, k or 0, v)`` into ``out``."""
    names = {"qw": "query.weight", "kw": "key.weight", "vw": "value.weight", "qb": "q_bias", "vb": "v_bias"}
    if any(p in parts for p in ("qw", "kw", "vw")):
        lost = [p for p in ("qw", "kw", "vw") if p not in parts]
        missing += [f"{source}{names[p]}" for p in lost]
        if not lost:
            out[f"{prefix}attn.qkv.weight"] = torch.cat([parts["qw"], parts["kw"], parts["vw"]])
    if any(p in parts for p in ("qb", "vb", "kb")):
        lost = [p for p in ("qb", "vb") if p not in parts]
        missing += [f"{source}{names[p]}" for p in lost]
        if not lost:
            key = parts.get("kb", torch.zeros_like(parts["qb"]))
            out[f"{prefix}attn.qkv.bias"] = torch.cat([parts["qb"], key, parts["vb"]])


def rename_videomae_keys(state: dict[str, Tensor], kind: LayoutKind) -> RenamedState:
    """Rename ``state`` (source names) to lfq-kit names for layout ``kind``; nothing is dropped silently: keys no
    rule names come back in ``unmatched``. A ``qkv.bias`` is present only where the source has q/v biases."""
    rules = [(re.compile(p), t, b) for p, t, b in _RULES[kind]]
    out: dict[str, Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, Tensor]] = {}
    unmatched: list[str] = []
    used = 0
    for key, value in state.items():
        for pattern, target, block in rules:
            match = pattern.fullmatch(key)
            if match is None:
                continue
            if block is None:
                out[target.format(*match.groups())] = value
                used += 1
                break
            index, local = match.groups()
            part = _block_part(block, local)
            if part is None:
                continue
            prefix = target.format(index)
            if part[0] == "copy":
                out[prefix + part[1]] = value
            else:
                source = key[: len(key) - len(local)] + ("attention.attention." if block == "hf" else "attn.")
                qkv.setdefault((prefix, source), {})[part[1]] = value
            used += 1
            break
        else:
            unmatched.append(key)
    missing: list[str] = []
    for (prefix, source), parts in qkv.items():
        _assemble_qkv(prefix, parts, source, out, missing)
    return RenamedState(out, unmatched, sorted(missing), used)
