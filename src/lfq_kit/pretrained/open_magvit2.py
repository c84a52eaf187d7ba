"""Open-MAGVIT2 tokenizers (TencentARC/SEED-Voken, Apache-2.0) → lfq-kit :class:`~lfq_kit.models.VideoTokenizer`
checkpoints: ``lfq-kit convert open-magvit2 SRC.ckpt --output X.ckpt`` (docs/pretrained.md).

Their Lightning ``.ckpt`` holds, under ``state_dict``, the tokenizer (``encoder.*``, ``decoder.*``), the GAN and
perceptual losses (``loss.*``: discriminator and LPIPS, not part of the tokenizer, ignored) and, when trained with
``use_ema``, an EMA copy of every parameter named ``model_ema.<name without its dots>`` (their ``LitEma``), plus
``model_ema.decay`` / ``model_ema.num_updates``. Their evaluation uses the EMA weights, and so does the conversion
unless ``ema=False``; the EMA names are mapped back as their ``init_from_ckpt`` does. The LFQ has no weights.

The architecture is read from the weights (:func:`~lfq_kit.pretrained.open_magvit2_layout.read_architecture`), or
taken from a config (``configs/pretrained/open_magvit2_*.yaml``) that must agree with them. The converted model runs
once on a fixed input before the file is written (atomically: a failed conversion leaves no file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

import torch
from torch import Tensor

from ..models import VideoTokenizer
from .checkpoint_files import (
    ConversionResult,
    LayoutError,
    check_key_layout,
    read_checkpoint_file,
    save_module_checkpoint,
    tensor_state,
)
from .lightning_config import instantiate_with_config, read_model_section, resolve_model_config
from .open_magvit2_layout import OpenMagvit2Architecture, layout_of, read_architecture, to_lfq_order

__all__ = [
    "ConvertedTokenizer",
    "OpenMagvit2Weights",
    "check_run",
    "checked_config_node",
    "convert_open_magvit2",
    "open_magvit2_tokenizer",
    "select_weights",
]

EMA_PREFIX = "model_ema."
_EMA_STATE = ("model_ema.decay", "model_ema.num_updates")


class OpenMagvit2Weights(NamedTuple):
    """The tokenizer tensors of a checkpoint, under their own ``encoder.*`` / ``decoder.*`` names.

    Attributes:
        tensors: name → tensor (the EMA copy or the trained weights).
        which: ``"EMA weights"``, ``"trained weights"`` or ``"trained weights; the file has no EMA copy"``.
        ignored: how many ``loss.*`` tensors were left out (their EMA copies are left out too).
    """

    tensors: dict[str, Tensor]
    which: str
    ignored: int


class ConvertedTokenizer(NamedTuple):
    """What :func:`open_magvit2_tokenizer` returns.

    Attributes:
        model: the :class:`~lfq_kit.models.VideoTokenizer` (float32, eval mode) holding the converted weights.
        source_format: the layout detected (image or video, EMA or trained weights, architecture, ignored keys).
        tensors: number of tensors copied from the file.
    """

    model: VideoTokenizer
    source_format: str
    tensors: int


def _is_loss(key: str) -> bool:
    return key.startswith(("loss.", f"{EMA_PREFIX}loss")) or key in _EMA_STATE


def select_weights(state: Mapping[str, Tensor], path: str | os.PathLike, ema: bool = True) -> OpenMagvit2Weights:
    """Split a checkpoint's ``state_dict`` into the tokenizer's tensors (EMA copy when ``ema`` and present) and the
    ignored ``loss.*`` ones.

    Raises:
        LayoutError: no ``encoder.*`` / ``decoder.*`` tensors, or keys outside the known prefixes (the message lists
            the keys that did not match); an EMA copy that misses tensors or has extra ones (listed).
    """
    plain = {k: v for k, v in state.items() if k.startswith(("encoder.", "decoder."))}
    unknown = sorted(k for k in state if k not in plain and not _is_loss(k) and not k.startswith(EMA_PREFIX))
    if not plain or unknown:
        listed = unknown or sorted(state)
        raise LayoutError(
            f"{str(path)!r} matches no known Open-MAGVIT2 checkpoint layout (encoder.*, decoder.*, loss.*, "
            f"model_ema.*); keys that did not match ({len(listed)}): {', '.join(listed[:20])}"
            + (" ..." if len(listed) > 20 else "")
        )
    ignored = sum(1 for k in state if k.startswith("loss."))
    shadows = {k[len(EMA_PREFIX) :]: v for k, v in state.items() if k.startswith(EMA_PREFIX) and not _is_loss(k)}
    if not ema or not shadows:
        return OpenMagvit2Weights(plain, "trained weights" + ("; the file has no EMA copy" if ema else ""), ignored)
    flat = {k.replace(".", ""): k for k in plain}  # LitEma's buffer names: the parameter name without dots
    if len(flat) != len(plain):
        raise LayoutError(f"{str(path)!r}: parameter names collide without their dots; pass --no-ema")
    missing = sorted(EMA_PREFIX + s for s in flat if s not in shadows)
    unexpected = sorted(EMA_PREFIX + s for s in shadows if s not in flat)
    if missing or unexpected:
        raise LayoutError(
            f"{str(path)!r}: the EMA copy does not match the weights (missing: {', '.join(missing[:10]) or 'none'}; "
            f"unexpected: {', '.join(unexpected[:10]) or 'none'}); pass --no-ema to convert the trained weights"
        )
    return OpenMagvit2Weights({flat[s]: v for s, v in shadows.items()}, "EMA weights", ignored)


def checked_config_node(config: str | os.PathLike, arch: OpenMagvit2Architecture, path: str | os.PathLike) -> dict:
    """The resolved model node of ``config`` after checking that its encoder and decoder are the weights'.

    Raises:
        FileNotFoundError: no file at ``config``.
        LayoutError: an unparsable config, a model that is not a tokenizer, or a class or setting that
            differs from the weights' (each named, config value vs the weights' value).
    """
    try:
        node = resolve_model_config(read_model_section(config), source=str(config))
    except ValueError as err:
        raise LayoutError(str(err)) from err
    wanted = resolve_model_config(arch.model_config())
    if node["class_path"] != wanted["class_path"]:
        raise LayoutError(f"config {str(config)!r} builds a {node['class_path']}, not a {wanted['class_path']}")
    diffs = []
    for part in ("encoder", "decoder"):
        mine, theirs = node["init_args"][part], wanted["init_args"][part]
        if mine["class_path"] != theirs["class_path"]:
            diffs.append(f"{part} {mine['class_path']} in the config, {theirs['class_path']} for these weights")
            continue
        diffs += [
            f"{part}.{key}: {mine['init_args'].get(key)!r} in the config, {value!r} for these weights"
            for key, value in theirs["init_args"].items()
            if mine["init_args"].get(key) != value
        ]
    if diffs:
        raise LayoutError(f"config {str(config)!r} disagrees with the weights of {str(path)!r}: {'; '.join(diffs)}")
    return node


def open_magvit2_tokenizer(
    state: Mapping[str, Tensor], path: str | os.PathLike, config: str | os.PathLike | None = None, ema: bool = True
) -> ConvertedTokenizer:
    """A :class:`~lfq_kit.models.VideoTokenizer` (float32, eval mode) holding an Open-MAGVIT2 ``state_dict``.

    Args:
        state: the checkpoint's ``state_dict`` (their key names).
        path: the source file, named in errors.
        config: an architecture config whose ``model`` node is used (checked against the weights); None: the
            architecture read from the weights.
        ema: take the EMA copy when the file has one.

    Raises:
        LayoutError: an unknown layout, missing or unexpected keys, a shape that does not fit, or a config that
            disagrees with the weights (each names the file and the keys).
    """
    weights = select_weights(state, path, ema)
    arch = read_architecture(weights.tensors, path)
    node = checked_config_node(config, arch, path) if config is not None else resolve_model_config(arch.model_config())
    model = instantiate_with_config(node, VideoTokenizer)
    layout = layout_of(arch)
    target = model.state_dict()
    kind = "video" if arch.video else "image"
    check_key_layout(
        path,
        {src: tuple(target[dst].shape) for src, dst in layout.keys.items()},
        weights.tensors,
        f"Open-MAGVIT2 {kind} tokenizer ({weights.which})",
    )
    converted = {
        dst: to_lfq_order(weights.tensors[src], layout.upsamplers[src])
        if src in layout.upsamplers
        else weights.tensors[src]
        for src, dst in layout.keys.items()
    }
    converted.update({key: torch.zeros_like(target[key]) for key in layout.zero_biases})
    model.load_state_dict({**target, **converted}, strict=True)
    source = (
        f"Open-MAGVIT2 {kind} tokenizer, {weights.which} (ch {arch.base_channels}, ch_mult "
        f"{list(arch.channel_multipliers)}, num_res_blocks {arch.num_res_blocks}, LFQ {arch.z_channels} bits); "
        f"{weights.ignored} loss.* tensors (discriminator, LPIPS) ignored"
    )
    return ConvertedTokenizer(model.eval(), source, len(layout.keys))


@torch.no_grad()
def check_run(model, path: str | os.PathLike) -> str:
    """Run ``model`` once on a fixed smooth input in ``[−1, 1]`` (one frame for image models, ``1 + r`` frames for
    video, ``2·s × 2·s`` pixels) and describe the result.

    Raises:
        LayoutError: non-finite latents or outputs (the message names ``path``).
    """
    enc = model.encoder
    frames = 1 + enc.temporal_compression if enc.temporal_compression > 1 else 1
    size = 2 * enc.spatial_compression
    grid = torch.linspace(-3.0, 3.0, size)
    x = torch.sin(
        grid.view(1, 1, 1, size, 1)
        + 2 * grid.view(1, 1, 1, 1, size)
        + torch.arange(3.0).view(1, 3, 1, 1, 1)
        + 0.5 * torch.arange(float(frames)).view(1, 1, frames, 1, 1)
    )
    gen = model.inference_generator
    quantized = gen.quantizer(gen.encoder(x))
    y = gen.decoder(quantized.quantized)
    if not (torch.isfinite(quantized.quantized).all() and torch.isfinite(y).all()):
        raise LayoutError(f"the model converted from {str(path)!r} gives non-finite outputs on a fixed input")
    ids = quantized.indices
    return (
        f"{tuple(x.shape)} input → {ids.numel()} tokens ({ids.unique().numel()} distinct) → {tuple(y.shape)} "
        f"output, finite, in [{y.min():.2f}, {y.max():.2f}]"
    )


def convert_open_magvit2(
    source: str | os.PathLike,
    output: str | os.PathLike,
    config: str | os.PathLike | None = None,
    ema: bool = True,
    trust_pickle: bool = False,
) -> ConversionResult:
    """Convert an Open-MAGVIT2 ``.ckpt`` (or a ``.safetensors`` / ``.pth`` of its ``state_dict``) into an lfq-kit
    :class:`~lfq_kit.models.VideoTokenizer` checkpoint at ``output``.

    The result loads with ``VideoTokenizer.load_from_checkpoint(output)``, as ``tokenizer: output`` of the masked-LM,
    VideoMAE and compression configs (:class:`~lfq_kit.models.FrozenTokenizer`) and with ``lfq-kit compress
    --tokenizer output``. Images are one-frame clips ``(B, 3, 1, H, W)`` in ``[−1, 1]``.

    Raises:
        FileNotFoundError: no file at ``source`` (or ``config``).
        LayoutError: an unreadable or truncated file; pickled objects besides tensors without ``trust_pickle``;
            an unknown layout, missing keys or shapes; a config that disagrees with the weights.
    """
    state = tensor_state(read_checkpoint_file(source, trust_pickle=trust_pickle), source)
    model, source_format, tensors = open_magvit2_tokenizer(state, source, config=config, ema=ema)
    check = check_run(model, source)
    return ConversionResult(save_module_checkpoint(model, output), source_format, tensors, check)
