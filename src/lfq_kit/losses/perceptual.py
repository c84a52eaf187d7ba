"""Perceptual losses on frames: MSE of ImageNet classifier logits (MAGVIT-v2's choice) and LPIPS.

Weights are never fetched at import or construction. :class:`LogitsPerceptualLoss` loads them on first use
from a local file (``weights``) or, when ``weights`` is None, from timm's pretrained cache (which downloads
when online); :class:`LPIPSLoss` builds torchmetrics' LPIPS on first use. The frozen networks are kept out
of ``state_dict`` so tokenizer checkpoints do not carry them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LPIPSLoss", "LogitsPerceptualLoss", "frames"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def frames(video: Tensor) -> Tensor:
    """``(B, C, T, H, W)`` → ``(B·T, C, H, W)``; 4-D images pass through."""
    return video if video.ndim == 4 else video.transpose(1, 2).flatten(0, 1)


class _FrozenNetwork:
    """Holds a frozen network outside the parent's module tree (not in state_dict, moved lazily)."""

    def __init__(self) -> None:
        self.net: nn.Module | None = None

    def on(self, device: torch.device) -> nn.Module:
        assert self.net is not None
        if next(self.net.parameters()).device != device:
            self.net.to(device)
        return self.net


class LogitsPerceptualLoss(nn.Module):
    """MSE between ImageNet classifier logits of real and reconstructed frames (reference Sec. 3: ResNet-50
    logits, weight 0.1 in the tokenizer).

    Input: two ``(B, 3, T, H, W)`` (or ``(B, 3, H, W)``) tensors in ``[−1, 1]``; every frame is resized to
    ``input_size`` and normalized with ImageNet statistics. Output: a 0-dim float32 tensor.

    Args:
        model_name: a timm classifier (``resnet50`` in the paper).
        weights: path of a local ``.pth`` / ``.safetensors`` / ``.bin`` state dict; None loads timm's
            pretrained weights (its cache, downloading when online) on first use.
        input_size: frames are resized to this square size (224 for ImageNet classifiers); None keeps them.

    Raises:
        FileNotFoundError: ``weights`` does not exist (raised on first use, naming the path).
        RuntimeError: timm could not load pretrained weights (offline without a cache); the message says
            to pass ``weights``.
    """

    def __init__(self, model_name: str = "resnet50", weights: str | None = None, input_size: int | None = 224) -> None:
        super().__init__()
        self.model_name = model_name
        self.weights = weights
        self.input_size = input_size
        self._frozen = _FrozenNetwork()
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _load(self) -> nn.Module:
        import timm

        if self.weights is not None:
            path = Path(self.weights)
            if not path.is_file():
                raise FileNotFoundError(f"perceptual loss weights {str(path)!r} not found (model {self.model_name})")
            net = timm.create_model(self.model_name, pretrained=True, pretrained_cfg_overlay={"file": str(path)})
        else:
            try:
                net = timm.create_model(self.model_name, pretrained=True)
            except Exception as err:
                raise RuntimeError(
                    f"could not load pretrained {self.model_name} weights through timm ({err}); download them "
                    "once and pass the file as `weights: /path/to/model.safetensors`, or set the perceptual "
                    "loss to null"
                ) from err
        return net.eval().requires_grad_(False)

    def logits(self, x: Tensor) -> Tensor:
        """ImageNet logits ``(N, 1000)`` of frames ``(N, 3, H, W)`` in ``[−1, 1]``."""
        if self._frozen.net is None:
            self._frozen.net = self._load()
        x = (x + 1) / 2
        if self.input_size is not None and x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self._frozen.on(x.device)((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))

    def forward(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            target_logits = self.logits(frames(target))
        return F.mse_loss(self.logits(frames(reconstruction)).float(), target_logits.float())


class LPIPSLoss(nn.Module):
    """LPIPS (Zhang et al., arXiv 1801.03924) between frames, through torchmetrics; mean over frames.

    The torchmetrics module (and its torchvision backbone weights, downloaded on first use when not cached)
    is built on the first call. Inputs: ``(B, 3, T, H, W)`` or ``(B, 3, H, W)`` in ``[−1, 1]``.

    Args:
        net_type: ``"vgg"`` (the common substitute for MAGVIT-v2's logits loss), ``"alex"`` or ``"squeeze"``.
    """

    def __init__(self, net_type: str = "vgg") -> None:
        super().__init__()
        self.net_type = net_type
        self._frozen = _FrozenNetwork()

    def forward(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        if self._frozen.net is None:
            from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

            try:
                metric = LearnedPerceptualImagePatchSimilarity(net_type=self.net_type, reduction="mean")
            except Exception as err:
                raise RuntimeError(f"could not build LPIPS-{self.net_type} (weights unavailable?): {err}") from err
            self._frozen.net = metric.eval().requires_grad_(False)
        net = self._frozen.on(reconstruction.device)
        return net(frames(reconstruction).float().clamp(-1, 1), frames(target).float().clamp(-1, 1))
