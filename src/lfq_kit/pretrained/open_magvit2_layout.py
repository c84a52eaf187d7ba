"""The key layout of Open-MAGVIT2 tokenizer checkpoints (TencentARC/SEED-Voken) and how it maps onto lfq-kit's.

Their image tokenizer is ``src/Open_MAGVIT2/modules/diffusionmodules/improved_model.py`` (``Encoder``, ``Decoder``),
the video one ``improved_video_model.py`` (the same names with every conv wrapped in a ``ConvBlock3D``, whose
parameters carry an extra ``.conv_1``). Both have lfq-kit's layer order (:mod:`lfq_kit.backbones.conv_autoencoder`),
so a checkpoint converts by renaming, except for three things handled here:

- their residual-block convs, shortcuts and the encoder's first conv have no bias: lfq-kit's biases are set to 0;
- their decoder lists its levels shallowest first (``up.0`` is the last one run); lfq-kit's deepest first;
- their depth-to-space takes channels in ``(s_t, s_h, s_w, C)`` order (``(s_h, s_w, C)`` for images), lfq-kit's in
  ``(s_t, C, s_h, s_w)`` (``(C, s_h, s_w)``): the upsampler conv's output channels are permuted.

The architecture (base channels, multipliers, residual blocks, latent channels, image or video) is read from the
weights' shapes, never guessed; the settings that lfq-kit needs to compute what their code computes (GroupNorm eps
1e-6, 32 groups, their AdaGN; for video also zero temporal padding, clip-wide norms and their first-sub-frame
upsampling, which make that model non-causal) come with it (:meth:`OpenMagvit2Architecture.model_config`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from torch import Tensor

from .checkpoint_files import LayoutError

__all__ = ["OpenMagvit2Architecture", "OpenMagvit2Layout", "layout_of", "read_architecture", "to_lfq_order"]

GROUPS = 32  # SEED-Voken's nn.GroupNorm(32, C) everywhere
EPS = 1e-6  # their GroupNorm and AdaGN eps


@dataclass(frozen=True)
class OpenMagvit2Architecture:
    """An Open-MAGVIT2 tokenizer's shape, as their ``ddconfig`` gives it.

    Attributes:
        video: the 3D causal-conv video tokenizer (``improved_video_model``), else the 2D image one.
        base_channels: ``ch``.
        channel_multipliers: ``ch_mult`` (released: ``(1, 2, 2, 4)`` at 128 px, ``(1, 1, 2, 2, 4)`` at 256 px).
        num_res_blocks: residual blocks per level and in the middle (released: 4).
        z_channels: latent channels = LFQ bits (18 for 2^18 codes, 14 for 2^14).
        in_channels, out_channels: pixel channels.
    """

    video: bool
    base_channels: int
    channel_multipliers: tuple[int, ...]
    num_res_blocks: int
    z_channels: int
    in_channels: int = 3
    out_channels: int = 3

    @property
    def temporal_downsample(self) -> tuple[bool, ...]:
        """Video only: their downsampler after level ``i`` halves time where ``ch_mult[i] != 1``."""
        return tuple(m != 1 for m in self.channel_multipliers[:-1])

    def upsample_factors(self, level: int) -> tuple[int, ...]:
        """The depth-to-space factors of the upsampler that undoes downsampler ``level``."""
        if not self.video:
            return (2, 2)
        return (2 if self.temporal_downsample[level] else 1, 2, 2)

    def model_config(self) -> dict:
        """A :class:`~lfq_kit.models.VideoTokenizer` config node (``class_path``, ``init_args``) that computes what
        their model computes: LFQ on ``z_channels`` bits, no discriminator, no EMA."""
        common = {
            "base_channels": self.base_channels,
            "channel_multipliers": list(self.channel_multipliers),
            "num_res_blocks": self.num_res_blocks,
            "num_groups": GROUPS,
            "norm_eps": EPS,
        }
        encoder = {"in_channels": self.in_channels, "out_channels": self.z_channels, **common}
        decoder = {
            "in_channels": self.z_channels,
            "out_channels": self.out_channels,
            **common,
            "adaptive_norm": True,
            "adaptive_norm_variant": "open_magvit2",
        }
        if self.video:
            video = {
                "temporal_downsample": list(self.temporal_downsample),
                "padding_mode": "zeros",
                "clip_wide_norm": True,
            }
            encoder.update(video)
            decoder.update(video, keep_first_subframe=True)
        kind = "Magvit2" if self.video else "Image2d"
        return {
            "class_path": "lfq_kit.models.VideoTokenizer",
            "init_args": {
                "encoder": {"class_path": f"lfq_kit.backbones.{kind}Encoder", "init_args": encoder},
                "decoder": {"class_path": f"lfq_kit.backbones.{kind}Decoder", "init_args": decoder},
                "quantizer": {"class_path": "lfq_kit.quantizers.LFQ"},
                "discriminator": None,
                "perceptual_loss": None,
                "ema_decay": None,
            },
        }


class OpenMagvit2Layout(NamedTuple):
    """Every tensor of an Open-MAGVIT2 tokenizer and where it goes in a :class:`~lfq_kit.models.VideoTokenizer`.

    Attributes:
        keys: their key (``encoder.*``, ``decoder.*``) → lfq-kit key (``generator.encoder.*``, ...).
        zero_biases: lfq-kit bias keys their bias-less convs leave to 0.
        upsamplers: their upsampler conv keys (weight and bias) → depth-to-space factors (channels permuted).
    """

    keys: dict[str, str]
    zero_biases: list[str]
    upsamplers: dict[str, tuple[int, ...]]


def layout_of(arch: OpenMagvit2Architecture) -> OpenMagvit2Layout:
    """The key layout of a checkpoint of ``arch``, mirroring their ``Encoder`` / ``Decoder`` constructors."""
    keys: dict[str, str] = {}
    zero: list[str] = []
    ups: dict[str, tuple[int, ...]] = {}
    wrap = ".conv_1" if arch.video else ""

    def conv(src: str, dst: str, bias: bool = True) -> None:
        keys[f"{src}{wrap}.weight"] = f"{dst}.weight"
        if bias:
            keys[f"{src}{wrap}.bias"] = f"{dst}.bias"
        else:
            zero.append(f"{dst}.bias")

    def norm(src: str, dst: str) -> None:
        keys.update({f"{src}.weight": f"{dst}.weight", f"{src}.bias": f"{dst}.bias"})

    def block(src: str, dst: str, c_in: int, c_out: int) -> None:
        norm(f"{src}.norm1", f"{dst}.norm1")
        conv(f"{src}.conv1", f"{dst}.conv1", bias=False)
        norm(f"{src}.norm2", f"{dst}.norm2")
        conv(f"{src}.conv2", f"{dst}.conv2", bias=False)
        if c_in != c_out:
            conv(f"{src}.nin_shortcut", f"{dst}.skip", bias=False)

    widths = [arch.base_channels * m for m in arch.channel_multipliers]
    n, enc, dec = len(widths), "generator.encoder", "generator.decoder"
    conv("encoder.conv_in", f"{enc}.conv_in", bias=False)
    c = widths[0]
    for i, width in enumerate(widths):
        for j in range(arch.num_res_blocks):
            block(f"encoder.down.{i}.block.{j}", f"{enc}.levels.{i}.blocks.{j}", c, width)
            c = width
        if i < n - 1:
            conv(f"encoder.down.{i}.downsample", f"{enc}.levels.{i}.resample")
    for j in range(arch.num_res_blocks):
        block(f"encoder.mid_block.{j}", f"{enc}.mid.{j}", c, c)
    norm("encoder.norm_out", f"{enc}.norm_out")
    conv("encoder.conv_out", f"{enc}.conv_out")

    conv("decoder.conv_in", f"{dec}.conv_in")
    for j in range(arch.num_res_blocks):
        block(f"decoder.mid_block.{j}", f"{dec}.mid.{j}", c, c)
    for i in reversed(range(n)):  # their up.i is lfq-kit's levels.(n - 1 - i)
        level = f"{dec}.levels.{n - 1 - i}"
        for part in ("gamma", "beta"):
            norm(f"decoder.adaptive.{i}.{part}", f"{level}.norm.{part}")
        for j in range(arch.num_res_blocks):
            block(f"decoder.up.{i}.block.{j}", f"{level}.blocks.{j}", c, widths[i])
            c = widths[i]
        if i > 0:
            conv(f"decoder.up.{i}.upsample.conv1", f"{level}.resample.conv")
            for suffix in ("weight", "bias"):
                ups[f"decoder.up.{i}.upsample.conv1{wrap}.{suffix}"] = arch.upsample_factors(i - 1)
    norm("decoder.norm_out", f"{dec}.norm_out")
    conv("decoder.conv_out", f"{dec}.conv_out")
    return OpenMagvit2Layout(keys, zero, ups)


def to_lfq_order(tensor: Tensor, factors: tuple[int, ...]) -> Tensor:
    """An upsampler conv's weight ``(C·Π s, C_in, *k)`` or bias ``(C·Π s,)`` with output channels in their
    ``(s_t, s_h, s_w, C)`` order (``(s_h, s_w, C)`` for images) → lfq-kit's ``(s_t, C, s_h, s_w)``
    (``(C, s_h, s_w)``)."""
    st, sh, sw = factors if len(factors) == 3 else (1, *factors)
    c = tensor.shape[0] // (st * sh * sw)
    split = tensor.reshape(st, sh, sw, c, *tensor.shape[1:])
    return split.permute(0, 3, 1, 2, *range(4, split.ndim)).reshape(tensor.shape)


def _indices(state: Mapping[str, Tensor], pattern: str) -> list[int]:
    found = {int(m.group(1)) for k in state if (m := re.match(pattern, k))}
    return sorted(found)


def read_architecture(state: Mapping[str, Tensor], path: str | os.PathLike) -> OpenMagvit2Architecture:
    """The architecture of the ``encoder.*`` / ``decoder.*`` weights in ``state`` (their key names).

    Raises:
        LayoutError: neither the image nor the video layout's first conv is there (the message lists the keys that
            did not match), or a key the architecture is read from is missing or has an impossible shape.
    """

    def shape(key: str) -> tuple[int, ...]:
        if key not in state:
            raise LayoutError(f"{str(path)!r} misses {key!r}, needed to read the Open-MAGVIT2 architecture")
        return tuple(state[key].shape)

    if "encoder.conv_in.conv_1.weight" in state:
        video, wrap = True, ".conv_1"
    elif "encoder.conv_in.weight" in state:
        video, wrap = False, ""
    else:
        unmatched = sorted(state)[:20]
        raise LayoutError(
            f"{str(path)!r} matches no known Open-MAGVIT2 layout (neither the image tokenizer's "
            f"'encoder.conv_in.weight' nor the video tokenizer's 'encoder.conv_in.conv_1.weight'); "
            f"keys that did not match ({len(state)} in all): {', '.join(unmatched)}"
        )
    conv_in = shape(f"encoder.conv_in{wrap}.weight")
    ch, levels = conv_in[0], _indices(state, r"encoder\.down\.(\d+)\.")
    blocks = _indices(state, r"encoder\.down\.0\.block\.(\d+)\.")
    if not levels or levels != list(range(len(levels))) or not blocks:
        raise LayoutError(f"{str(path)!r} has no consecutive encoder.down.<i>.block.<j> levels (found levels {levels})")
    widths = [shape(f"encoder.down.{i}.block.0.norm2.weight")[0] for i in levels]
    if any(w % ch for w in widths):
        raise LayoutError(f"{str(path)!r}: level widths {widths} are not multiples of conv_in's {ch} channels")
    return OpenMagvit2Architecture(
        video=video,
        base_channels=ch,
        channel_multipliers=tuple(w // ch for w in widths),
        num_res_blocks=len(blocks),
        z_channels=shape(f"encoder.conv_out{wrap}.weight")[0],
        in_channels=conv_in[1],
        out_channels=shape(f"decoder.conv_out{wrap}.weight")[0],
    )
