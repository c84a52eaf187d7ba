"""Mixup (arXiv 1710.09412) and CutMix (arXiv 1905.04899) for video clips, with soft targets (VideoMAE's fine-tuning
recipe, MCG-NJU/VideoMAE ``run_class_finetuning.py``).

The CutMix box is spatial and the same in every frame: it cuts ``H`` and ``W`` of ``(B, C, T, H, W)`` clips
(timm's ``Mixup`` cuts the last two axes of 4-D images; handing it a 5-D clip unreshaped would cut ``(H, W)`` only
by accident of layout, and its checks assume images). As in timm's batch mode, one ``λ`` is drawn per batch and each
clip is mixed with the clip at the mirrored batch position (``x.flip(0)``); CutMix is chosen with probability
``switch_prob`` when both are enabled, and its ``λ`` is corrected to the exact area of the clipped box.

Targets: label-smoothed one-hot rows (``1 − ε + ε/K`` on the class, ``ε/K`` elsewhere) mixed with the same ``λ``;
train against them with ``F.cross_entropy(logits, targets)`` (probability targets).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["MixedBatch", "VideoMixup", "smooth_one_hot"]


class MixedBatch(NamedTuple):
    """Mixed clips ``(B, C, T, H, W)``, soft targets ``(B, K)`` float32 summing to 1, the ``λ`` used, and the
    CutMix box ``(top, left, height, width)`` in pixels (None for mixup or no mixing)."""

    video: Tensor
    targets: Tensor
    lam: float
    box: tuple[int, int, int, int] | None


def smooth_one_hot(labels: Tensor, num_classes: int, smoothing: float = 0.0) -> Tensor:
    """``(B,)`` int64 → ``(B, K)`` float32 rows with ``1 − ε + ε/K`` on the label and ``ε/K`` elsewhere."""
    off = smoothing / num_classes
    out = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return out.scatter_(1, labels.long()[:, None], 1.0 - smoothing + off)


class VideoMixup:
    """Mix a batch of clips and labels.

    Args:
        num_classes: ``K``.
        mixup_alpha: Beta(α, α) of mixup's ``λ``; 0 disables mixup (VideoMAE fine-tuning: 0.8).
        cutmix_alpha: Beta(α, α) of CutMix's ``λ``; 0 disables CutMix (VideoMAE: 1.0).
        prob: probability of mixing a batch at all (else only label smoothing).
        switch_prob: probability of CutMix instead of mixup when both are enabled (0.5).
        label_smoothing: ``ε`` of the targets (0.1).

    Raises:
        ValueError: a negative α, a probability outside ``[0, 1]``, or fewer than 2 classes.
    """

    def __init__(
        self,
        num_classes: int,
        mixup_alpha: float = 0.8,
        cutmix_alpha: float = 1.0,
        prob: float = 1.0,
        switch_prob: float = 0.5,
        label_smoothing: float = 0.1,
    ) -> None:
        if num_classes < 2 or min(mixup_alpha, cutmix_alpha) < 0 or not (0 <= prob <= 1 and 0 <= switch_prob <= 1):
            raise ValueError(
                f"VideoMixup needs num_classes >= 2, alphas >= 0 and probabilities in [0, 1], got "
                f"{num_classes}, {mixup_alpha}, {cutmix_alpha}, {prob}, {switch_prob}"
            )
        self.num_classes, self.mixup_alpha, self.cutmix_alpha = num_classes, mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob, self.label_smoothing = prob, switch_prob, label_smoothing

    def _draw(self) -> tuple[float, bool]:
        """``(λ, use CutMix)`` for one batch (host-side random numbers: no device sync)."""
        mix, cut = self.mixup_alpha > 0, self.cutmix_alpha > 0
        if not (mix or cut) or torch.rand(()).item() >= self.prob:
            return 1.0, False
        use_cut = cut and (not mix or torch.rand(()).item() < self.switch_prob)
        alpha = self.cutmix_alpha if use_cut else self.mixup_alpha
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        return lam, use_cut

    @staticmethod
    def cutmix_box(height: int, width: int, lam: float) -> tuple[int, int, int, int]:
        """A box of about ``(1 − λ)`` of the frame's area around a uniform centre, clipped to the frame:
        ``(top, left, box height, box width)``."""
        ratio = math.sqrt(1.0 - lam)
        bh, bw = int(height * ratio), int(width * ratio)
        cy, cx = int(torch.randint(height, ()).item()), int(torch.randint(width, ()).item())
        top, bottom = max(cy - bh // 2, 0), min(cy + bh // 2, height)
        left, right = max(cx - bw // 2, 0), min(cx + bw // 2, width)
        return top, left, bottom - top, right - left

    def __call__(self, video: Tensor, labels: Tensor) -> MixedBatch:
        """``video`` ``(B, C, T, H, W)``, ``labels`` ``(B,)`` int64 → :class:`MixedBatch`.

        Raises:
            ValueError: a clip that is not 5-D.
        """
        if video.ndim != 5:
            raise ValueError(f"VideoMixup expects clips (B, C, T, H, W), got shape {tuple(video.shape)}")
        targets = smooth_one_hot(labels, self.num_classes, self.label_smoothing)
        lam, use_cut = self._draw()
        if lam == 1.0:
            return MixedBatch(video, targets, 1.0, None)
        box = None
        if use_cut:
            h, w = video.shape[-2:]
            box = self.cutmix_box(h, w, lam)
            top, left, bh, bw = box
            video = video.clone()
            video[..., top : top + bh, left : left + bw] = video.flip(0)[..., top : top + bh, left : left + bw]
            lam = 1.0 - bh * bw / (h * w)  # the box's exact share
        else:
            video = video * lam + video.flip(0) * (1.0 - lam)
        return MixedBatch(video, targets * lam + targets.flip(0) * (1.0 - lam), lam, box)
