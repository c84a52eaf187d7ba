"""Checks at the tokenizer's boundary: pixels, token indices and the encoder/decoder pairing.

Invariant 12: models take and return float pixels in ``[−1, 1]``; anything else (uint8, ``[0, 255]``
floats, NaN or ±inf pixels, float64, an empty batch) is refused with an error that names the value and
the fix, never trained on or tokenized silently. Reading a value back to the host is a device sync, so
the training loop checks every batch lazily with :class:`LazyPixelCheck` instead of per step.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "LazyPixelCheck",
    "check_class_labels",
    "check_index_layout",
    "check_latent_channels",
    "check_quantizer_dim",
    "check_video",
    "raise_on_bad_pixels",
]

PIXEL_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
_TOLERANCE = 1e-3  # float rounding of x / 127.5 − 1


def _range_error(lo: float, hi: float) -> str | None:
    """The complaint about pixels whose minimum is ``lo`` and maximum ``hi``; None if they are fine."""
    if math.isnan(lo) or math.isnan(hi):
        return "expected finite pixels in [-1, 1], got NaN pixels; check the data pipeline (decoding, normalization)"
    if math.isinf(lo) or math.isinf(hi):
        return f"expected finite pixels in [-1, 1], got infinite pixels (values in [{lo:.3g}, {hi:.3g}])"
    if lo < -1.0 - _TOLERANCE or hi > 1.0 + _TOLERANCE:
        hint = "; [0, 255] inputs must be scaled with x / 127.5 - 1" if hi > 2 else ""
        return f"expected pixels in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]{hint}"
    return None


def check_video(video: Tensor, check_range: bool = True) -> None:
    """Raise ``ValueError`` unless ``video`` is a non-empty ``(B, C, T, H, W)`` float32, bfloat16 or float16
    tensor with (when ``check_range``) finite pixels in ``[−1, 1]``.

    The shape and dtype checks read no tensor value. The range check reads the minimum and maximum back to
    the host once (one device sync); NaN pixels fail it (a plain comparison with NaN is false).

    Raises:
        TypeError: ``video`` is not a tensor.
        ValueError: not 5-D; an empty batch (``B = 0``) or empty clip; integer pixels (uint8: scale with
            ``x / 127.5 − 1``); float64 or another dtype (cast with ``video.float()``); NaN or ±inf pixels;
            pixels outside ``[−1, 1]``.
    """
    if not isinstance(video, Tensor):
        raise TypeError(f"expected a video tensor (B, C, T, H, W), got {type(video).__name__}")
    if video.ndim != 5:
        raise ValueError(f"expected a video batch (B, C, T, H, W), got shape {tuple(video.shape)}")
    if video.numel() == 0:
        raise ValueError(f"expected a non-empty video batch (B, C, T, H, W), got shape {tuple(video.shape)}")
    if not video.is_floating_point():
        raise ValueError(
            f"expected float pixels in [-1, 1], got dtype {video.dtype}; convert uint8 frames with x / 127.5 - 1"
        )
    if video.dtype not in PIXEL_DTYPES:
        raise ValueError(
            f"expected float32, bfloat16 or float16 pixels, got dtype {video.dtype}; cast with video.float()"
        )
    if check_range:
        lo, hi = torch.stack(torch.aminmax(video.detach())).float().tolist()  # one host read
        message = _range_error(lo, hi)
        if message is not None:
            raise ValueError(message)


def check_index_layout(indices: Tensor, accepts_images: bool = False) -> None:
    """Raise unless ``indices`` is a non-empty tensor laid out as a decoder reads it: ``(B, T', H', W')``, or also
    ``(B, H', W')`` when ``accepts_images`` (the decoder takes image latents). Dtype and range are the quantizer's
    to check (:meth:`lfq_kit.quantizers.Quantizer.check_indices`, called by every ``indices_to_codes``).

    Raises:
        TypeError: ``indices`` is not a tensor.
        ValueError: the wrong number of axes (the message gives the expected layout); an empty tensor.
    """
    if not isinstance(indices, Tensor):
        raise TypeError(f"expected a tensor of token indices, got {type(indices).__name__}")
    ranks = (3, 4) if accepts_images else (4,)
    if indices.ndim not in ranks:
        layout = "(B, T', H', W') or (B, H', W')" if accepts_images else "(B, T', H', W') for a video decoder"
        hint = "" if accepts_images or indices.ndim != 3 else "; a single latent frame is indices.unsqueeze(1)"
        raise ValueError(f"expected token indices {layout}, got shape {tuple(indices.shape)}{hint}")
    if indices.numel() == 0:
        raise ValueError(f"expected non-empty token indices, got shape {tuple(indices.shape)}")


def check_latent_channels(encoder: nn.Module, decoder: nn.Module) -> int:
    """The latent dim ``D``: the encoder's ``out_channels``, which must equal the decoder's ``in_channels``
    where the decoder declares one.

    Raises:
        ValueError: an encoder without an integer ``out_channels``; a decoder whose ``in_channels``
            differs from it (both values named).
    """
    latent = getattr(encoder, "out_channels", None)
    if isinstance(latent, bool) or not isinstance(latent, int):
        raise ValueError(f"encoder {type(encoder).__name__} must expose an integer `out_channels` attribute")
    decoder_in = getattr(decoder, "in_channels", None)
    if isinstance(decoder_in, int) and not isinstance(decoder_in, bool) and decoder_in != latent:
        raise ValueError(
            f"decoder {type(decoder).__name__} in_channels = {decoder_in} differs from encoder "
            f"{type(encoder).__name__} out_channels = {latent}: the decoder takes the encoder's latent "
            f"channels (set the decoder's in_channels to {latent})"
        )
    return latent


def check_quantizer_dim(quantizer: nn.Module, latent_channels: int) -> None:
    """Raise ``ValueError`` unless the quantizer built for ``latent_channels`` has that ``dim``."""
    dim = getattr(quantizer, "dim", latent_channels)
    if dim != latent_channels:
        raise ValueError(
            f"quantizer {type(quantizer).__name__} has dim {dim}, but the encoder's out_channels is {latent_channels}"
        )


class LazyPixelCheck:
    """Range and finiteness check of every batch without a device sync per batch.

    :meth:`observe` folds a batch's minimum and maximum into device-side state, recording the first
    offending batch (NaN compares false, so NaN pixels count as offending); :meth:`error` reads that
    state back to the host once and returns the complaint, or None. The training module calls
    :meth:`error` only at steps where Lightning reads logged values back anyway.

    The state is a plain attribute, not a module buffer, so DDP's buffer broadcast never overwrites one
    rank's record with another's.
    """

    def __init__(self) -> None:
        self._first: Tensor | None = None  # position of the first offending batch, −1 if none
        self._range: Tensor | None = None  # (min, max) of that batch

    def reset(self) -> None:
        self._first = self._range = None

    @torch.no_grad()
    def observe(self, video: Tensor, position: int) -> None:
        """Record ``video`` (any float ``(B, ...)``) at ``position`` (a step or batch index): no host read."""
        lo, hi = torch.aminmax(video.detach())
        bad = ~((lo >= -1.0 - _TOLERANCE) & (hi <= 1.0 + _TOLERANCE))
        if self._first is None or self._first.device != video.device:
            self._first = torch.full((), -1, dtype=torch.long, device=video.device)
            self._range = torch.zeros(2, device=video.device)
        record = bad & (self._first < 0)
        self._first = torch.where(record, position, self._first)
        self._range = torch.where(record, torch.stack([lo, hi]).float(), self._range)

    def error(self, what: str = "batch") -> str | None:
        """The complaint about the first offending batch seen since the last :meth:`reset`, or None.

        One host read. ``what`` names the position in the message (``"training batch at generator step"``).
        """
        if self._first is None:
            return None
        first = int(self._first.item())
        if first < 0:
            return None
        lo, hi = self._range.tolist()
        return f"{what} {first}: {_range_error(lo, hi)}"


def raise_on_bad_pixels(check: LazyPixelCheck, what: str, trainer: Any = None) -> None:
    """Raise ``ValueError`` if ``check`` saw a bad batch here or (under DDP, ``trainer`` given) on another rank:
    every rank raises, none waits in a collective the others left."""
    message = check.error(what)
    if trainer is not None and trainer.world_size > 1:
        if trainer.strategy.reduce_boolean_decision(message is not None, all=False) and message is None:
            message = "another rank saw NaN, infinite or out-of-range pixels (its error names the batch)"
    if message is not None:
        raise ValueError(message)


def check_class_labels(labels: Tensor, num_classes: int) -> None:
    """Raise ``ValueError`` unless every class id lies in ``[0, num_classes)`` (one host read: call once per run)."""
    if labels.numel():
        lo, hi = torch.aminmax(labels)
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes}), got [{lo.item()}, {hi.item()}]")
