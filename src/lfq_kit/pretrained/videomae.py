"""``lfq-kit convert videomae``: a released VideoMAE checkpoint (arXiv 2203.12602) → an lfq-kit checkpoint.

Sources (the user downloads them; see docs/pretrained.md):

- an MCG-NJU/VideoMAE ``.pth`` file (``checkpoint["model"]`` or ``["module"]`` or the bare state dict), pretraining
  (``modeling_pretrain.py``) or fine-tuned (``modeling_finetune.py``);
- a transformers folder: ``config.json`` with ``model.safetensors`` (or its shards) or ``pytorch_model.bin``
  (``VideoMAEForPreTraining``, e.g. ``MCG-NJU/videomae-base``; ``VideoMAEForVideoClassification``, e.g.
  ``MCG-NJU/videomae-base-finetuned-kinetics``).

Files are read without running code from them (``torch.load(weights_only=True)`` or safetensors); the one object
besides tensors that MCG-NJU's ``utils.save_model`` stores, the run's ``argparse.Namespace`` (``"args"``), is
allowed: unpickling it only sets attributes.

Outputs (Lightning checkpoints whose hyper-parameters rebuild the model, ``load_from_checkpoint(path)``):

- pretraining → :class:`~lfq_kit.models.VideoMAEPretraining` (``target: pixels``): encoder, decoder, mask token
  and pixel head, from which pretraining continues (``VideoMAEPretraining(pretrained: X)``);
  ``VideoClassifier(pretrained: X)`` takes its ``encoder.*``.
- fine-tuned → :class:`~lfq_kit.models.VideoClassifier` with ``pooling: fc_norm`` and a backbone without final
  norm: ``load_from_checkpoint`` gives the classifier; ``pretrained: X`` with ``pretrained_prefix: backbone.``
  its backbone.

VideoMAE was trained on ``(pixel − ImageNet mean) / ImageNet std`` of pixels in ``[0, 1]``; lfq-kit's models take
``[−1, 1]``: the conversion folds that map into the tubelet embedding
(:func:`lfq_kit.backbones.tubelet_embedding.fold_input_normalization`), so the converted model gives VideoMAE's
outputs on lfq-kit's clips with no extra setting. LayerNorm epsilons follow the source (MCG-NJU 1e-6;
transformers ``layer_norm_eps`` in the layers, 1e-5 in ``decoder.norm`` and ``fc_norm``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ..backbones.sincos import sinusoid_table
from ..backbones.tubelet_embedding import fold_input_normalization, tubelet_grid
from ..backbones.video_vit import VideoViT
from .checkpoint_files import (
    ConversionResult,
    LayoutError,
    check_key_layout,
    read_checkpoint_file,
    save_module_checkpoint,
    tensor_state,
)
from .videomae_arch import VideoMAEArchitecture, architecture_from_config, architecture_from_shapes
from .videomae_keys import LayoutKind, rename_videomae_keys

__all__ = ["convert_videomae", "load_videomae"]

_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"  # Lightning's allow-listed CLI instantiator
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _read_transformers_folder(folder: Path, trust_pickle: bool) -> tuple[dict[str, Tensor], Path]:
    """The state dict of a transformers folder (single file or ``*.index.json`` shards) and the file named."""
    for name in _WEIGHT_FILES:
        index = folder / f"{name}.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state: dict[str, Tensor] = {}
            for shard in shards:
                file = folder / shard
                state.update(tensor_state(read_checkpoint_file(file, trust_pickle=trust_pickle), file))
            return state, index
        file = folder / name
        if file.is_file():
            return tensor_state(read_checkpoint_file(file, trust_pickle=trust_pickle), file), file
    raise LayoutError(f"{str(folder)!r} holds no {' or '.join(_WEIGHT_FILES)} beside its config.json")


def _detect(state: dict[str, Tensor], path: Path) -> LayoutKind:
    """The layout of a state dict from its keys (raises LayoutError listing them when none fits)."""
    keys = set(state)
    if any(k.startswith("videomae.") for k in keys):
        kind = "hf-pretrain" if "encoder_to_decoder.weight" in keys else "hf-finetune"
        raise LayoutError(
            f"{str(path)!r} holds transformers VideoMAE weights ({kind}); convert the folder that holds "
            "them with their config.json, whose architecture they need"
        )
    if "encoder_to_decoder.weight" in keys or any(k.startswith("encoder.blocks.") for k in keys):
        return "mcg-pretrain"
    if "patch_embed.proj.weight" in keys and any(k.startswith("blocks.") for k in keys):
        if "fc_norm.weight" not in keys and "norm.weight" in keys:
            raise LayoutError(
                f"{str(path)!r} is an MCG-NJU classifier without mean pooling (a final `norm`, no "
                "`fc_norm`: it classifies the first token), which lfq-kit does not support"
            )
        return "mcg-finetune"
    shown = ", ".join(sorted(keys)[:30]) + (", ..." if len(keys) > 30 else "")
    raise LayoutError(
        f"{str(path)!r} matches no VideoMAE layout (MCG-NJU pretraining: encoder.*, decoder.*, "
        f"encoder_to_decoder.weight, mask_token; MCG-NJU fine-tuned: patch_embed.*, blocks.*, fc_norm.*, "
        f"head.*; or a transformers folder); its keys: {shown}"
    )


def _strip_module_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Drop a ``module.`` prefix that every key has (a state dict saved from DistributedDataParallel)."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return state


def _position(tensors: dict[str, Tensor], key: str, arch: VideoMAEArchitecture, num_tokens: int) -> str:
    """``"sincos"`` if the file has no position table or VideoMAE's fixed one (then dropped), else ``"learned"``."""
    table = tensors.get(key)
    if table is None:
        return "sincos"
    if table.shape[-2:] == (num_tokens, arch.dim) and torch.allclose(
        table.float().reshape(1, num_tokens, arch.dim), sinusoid_table(num_tokens, arch.dim), atol=1e-5
    ):
        del tensors[key]
        return "sincos"
    tensors[key] = table.reshape(1, *table.shape[-2:])
    arch.notes.append("learned position embeddings")
    return "learned"


def _encoder_args(arch: VideoMAEArchitecture, position: str, final_norm: bool) -> dict[str, Any]:
    return {
        "clip_size": list(arch.clip_size),
        "tubelet_size": arch.tubelet_size,
        "patch_size": arch.patch_size,
        "in_channels": arch.in_channels,
        "dim": arch.dim,
        "depth": arch.depth,
        "num_heads": arch.num_heads,
        "mlp_ratio": arch.mlp_ratio,
        "position": position,
        "norm_eps": arch.norm_eps,
        "final_norm": final_norm,
    }


def _build(arch: VideoMAEArchitecture, pretraining: bool, tensors: dict[str, Tensor]) -> torch.nn.Module:
    """The lfq-kit module for ``arch``, with hyper-parameters in LightningCLI's form (``load_from_checkpoint``)."""
    from ..models import VideoClassifier, VideoMAEPretraining

    enc = "encoder." if pretraining else "backbone."
    try:
        num_tokens = math.prod(tubelet_grid(arch.clip_size, arch.tubelet_size, arch.patch_size))
    except ValueError as err:
        raise LayoutError(f"clip size {arch.clip_size} does not fit the file's tubelets: {err}") from err
    position = _position(tensors, f"{enc}pos_embed", arch, num_tokens)
    args = _encoder_args(arch, position, final_norm=pretraining)
    spec = {"class_path": "lfq_kit.backbones.VideoViT", "init_args": args}
    encoder = VideoViT(**{**args, "clip_size": tuple(args["clip_size"])})
    if pretraining:
        module = VideoMAEPretraining(
            encoder,
            "pixels",
            decoder_dim=arch.decoder_dim,
            decoder_depth=arch.decoder_depth,
            decoder_heads=arch.decoder_heads,
            decoder_norm_eps=arch.decoder_norm_eps,
            decoder_final_norm_eps=arch.decoder_final_norm_eps,
        )
        module.hparams.update({"_class_path": "lfq_kit.models.VideoMAEPretraining", "encoder": spec})
    else:
        module = VideoClassifier(encoder, arch.num_classes, pooling="fc_norm", fc_norm_eps=arch.fc_norm_eps)
        module.hparams.update({"_class_path": "lfq_kit.models.VideoClassifier", "backbone": spec})
    module.hparams["_instantiator"] = _INSTANTIATOR
    return module


def _check(module: torch.nn.Module, pretraining: bool) -> str:
    """Run the converted model once on a fixed clip; a one-line summary (raises LayoutError if not finite)."""
    encoder = module.encoder if pretraining else module.backbone
    gen = torch.Generator().manual_seed(0)
    clip = torch.rand((1, encoder.in_channels, *encoder.clip_size), generator=gen) * 2 - 1
    module.eval()
    with torch.no_grad():
        if pretraining:
            out = module.loss(clip, torch.Generator().manual_seed(0))
            line = f"pixel loss {float(out):.4f} on a fixed clip {tuple(clip.shape)}, 90% tube mask"
        else:
            out = module(clip)
            line = f"logits {tuple(out.shape)} on a fixed clip {tuple(clip.shape)}, top class {int(out.argmax())}"
    if not torch.isfinite(out).all():
        raise LayoutError(f"the converted model gives non-finite outputs on a fixed clip ({line})")
    return line


class _Source(NamedTuple):
    """A VideoMAE source read: its state dict (source names), layout, description, the file the tensors came from,
    the architecture when a config gives it (else None) and whether that config says the blocks have q/v biases."""

    state: dict[str, Tensor]
    kind: LayoutKind
    what: str
    weights: Path
    arch: VideoMAEArchitecture | None
    qv_bias: bool | None


def _read_folder(path: Path, trust_pickle: bool, overrides: dict[str, Any]) -> _Source:
    config_path = path / "config.json"
    if not config_path.is_file():
        raise LayoutError(f"{str(path)!r} is a folder without config.json (a transformers VideoMAE folder has one)")
    state, weights = _read_transformers_folder(path, trust_pickle)
    pretraining = "encoder_to_decoder.weight" in state
    arch, config = architecture_from_config(config_path, pretraining)
    clash = [f"{k} {v} vs {getattr(arch, k)}" for k, v in overrides.items() if v is not None and v != getattr(arch, k)]
    if clash:
        raise LayoutError(f"{str(config_path)!r} disagrees with the arguments: {', '.join(clash)}")
    if not pretraining and not arch.num_classes:  # no id2label: the classifier's rows
        arch.num_classes = int(state["classifier.weight"].shape[0]) if "classifier.weight" in state else 0
    what = f"transformers {'VideoMAEForPreTraining' if pretraining else 'VideoMAEForVideoClassification'}"
    kind: LayoutKind = "hf-pretrain" if pretraining else "hf-finetune"
    return _Source(state, kind, what, weights, arch, bool(config.get("qv_bias", config.get("qkv_bias", True))))


def _read_pth(path: Path, trust_pickle: bool) -> _Source:
    if not path.exists():
        raise FileNotFoundError(f"VideoMAE checkpoint {str(path)!r} not found")
    with torch.serialization.safe_globals([argparse.Namespace]):  # MCG-NJU's files hold their run's arguments
        loaded = read_checkpoint_file(path, trust_pickle=trust_pickle)
    state = _strip_module_prefix(tensor_state(loaded, path))
    kind = _detect(state, path)
    what = f"MCG-NJU VideoMAE {'pretraining' if kind == 'mcg-pretrain' else 'fine-tuned'} .pth"
    return _Source(state, kind, what, path, None, None)


def load_videomae(
    source: str | os.PathLike,
    *,
    trust_pickle: bool = False,
    num_heads: int | None = None,
    decoder_heads: int | None = None,
    clip_size: tuple[int, int, int] | None = None,
) -> tuple[torch.nn.Module, str, int]:
    """The converted lfq-kit module of a VideoMAE file or transformers folder, its format line and tensor count.

    Args:
        source: an MCG-NJU ``.pth`` or a transformers folder.
        trust_pickle: allow pickles beyond tensors (runs code from the file).
        num_heads, decoder_heads, clip_size: for MCG-NJU files, which do not store them (default: the released
            models', see :mod:`lfq_kit.pretrained.videomae_arch`); for a transformers folder they must agree with
            its ``config.json``.

    Raises:
        FileNotFoundError: no such file or folder.
        LayoutError: an unknown layout (the keys listed), missing / unexpected / mis-shaped keys (listed, with
            the file), a config.json that disagrees with the weights, a truncated file, non-finite outputs.
    """
    path = Path(source)
    overrides = {
        "num_heads": num_heads,
        "decoder_heads": decoder_heads,
        "clip_size": tuple(clip_size) if clip_size else None,
    }
    src = _read_folder(path, trust_pickle, overrides) if path.is_dir() else _read_pth(path, trust_pickle)
    pretraining = src.kind.endswith("pretrain")
    renamed = rename_videomae_keys(src.state, src.kind)
    if renamed.unmatched or renamed.missing:
        parts = [f"keys of no {src.what} layout: {', '.join(renamed.unmatched)}"] if renamed.unmatched else []
        parts += [f"missing: {', '.join(renamed.missing)}"] if renamed.missing else []
        raise LayoutError(f"{str(src.weights)!r} does not match the {src.what} layout; " + "; ".join(parts))
    tensors = {k: v.float() for k, v in renamed.tensors.items()}
    arch = src.arch or architecture_from_shapes(tensors, path, pretraining, num_heads, decoder_heads, clip_size)
    if not any(k.endswith("attn.qkv.bias") for k in tensors) and src.qv_bias is not True:
        qkv_weights = [k for k in tensors if k.endswith(".qkv.weight")]
        tensors.update({k.replace(".qkv.weight", ".qkv.bias"): torch.zeros(tensors[k].shape[0]) for k in qkv_weights})
        arch.notes.append("no q/v biases in the file: qkv.bias = 0")
    module = _build(arch, pretraining, tensors)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    try:
        check_key_layout(src.weights, expected, tensors, f"{src.what} ({_describe(arch)})")
    except LayoutError as err:
        if src.arch is not None:  # the architecture came from config.json: say so
            raise LayoutError(f"{err}; the architecture was read from {str(path / 'config.json')!r}") from None
        raise
    enc = "encoder." if pretraining else "backbone."
    weight, bias = fold_input_normalization(
        tensors[f"{enc}patch_embed.proj.weight"].double(), tensors[f"{enc}patch_embed.proj.bias"].double()
    )
    tensors[f"{enc}patch_embed.proj.weight"], tensors[f"{enc}patch_embed.proj.bias"] = weight.float(), bias.float()
    module.load_state_dict(tensors, strict=True)
    notes = f"; not in the file: {', '.join(arch.notes)}" if arch.notes else ""
    return module, f"{src.what}, {_describe(arch)}{notes}", renamed.used


def _describe(arch: VideoMAEArchitecture) -> str:
    t, h, w = arch.clip_size
    line = (
        f"ViT {arch.depth} x {arch.dim}, {arch.num_heads} heads, clip {t} x {h} x {w}, tubelet {arch.tubelet_size} "
        f"x {arch.patch_size} x {arch.patch_size}"
    )
    if arch.decoder_depth:
        line += f", decoder {arch.decoder_depth} x {arch.decoder_dim}, {arch.decoder_heads} heads"
    if arch.num_classes:
        line += f", {arch.num_classes} classes"
    return line


def convert_videomae(
    source: str | os.PathLike,
    output: str | os.PathLike,
    *,
    trust_pickle: bool = False,
    num_heads: int | None = None,
    decoder_heads: int | None = None,
    clip_size: tuple[int, int, int] | None = None,
) -> ConversionResult:
    """Convert ``source`` (see :func:`load_videomae`), run it once on a fixed clip, and write ``output``
    atomically (nothing is written when any step fails).

    Raises:
        FileNotFoundError, LayoutError: as :func:`load_videomae`.
    """
    module, fmt, used = load_videomae(
        source, trust_pickle=trust_pickle, num_heads=num_heads, decoder_heads=decoder_heads, clip_size=clip_size
    )
    check = _check(module, hasattr(module, "decoder"))
    written = save_module_checkpoint(module, output)
    return ConversionResult(Path(written), fmt, used, check)
