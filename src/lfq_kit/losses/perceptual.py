"""Perceptual losses on frames: MSE of ImageNet classifier logits (MAGVIT-v2's choice) and LPIPS.

Weights are never fetched at import or construction. Each loss resolves them in :meth:`load`, which
:class:`~lfq_kit.models.VideoTokenizer` calls from its ``setup("fit")`` hook, after the strategy starts and
before any data is read, so a missing file fails at once (and the first forward loads them otherwise). Both
take a local file (``weights``) for offline machines; with ``weights=None`` they use the libraries'
pretrained caches (timm for the logits loss, torchvision for the LPIPS backbone), which download when
online. The frozen networks are kept out of ``state_dict`` so tokenizer checkpoints do not carry them.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LPIPSLoss", "LogitsPerceptualLoss", "frames"]

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_LPIPS_BACKBONES = {"vgg": "vgg16", "alex": "alexnet", "squeeze": "squeezenet1_1"}  # torchvision names


def frames(video: Tensor) -> Tensor:
    """``(B, C, T, H, W)`` → ``(B·T, C, H, W)``; 4-D images pass through."""
    return video if video.ndim == 4 else video.transpose(1, 2).flatten(0, 1)


def _weights_file(weights: str, what: str) -> Path:
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"perceptual loss weights {str(path)!r} not found ({what})")
    return path


def _pretrained_error(what: str, err: Exception) -> RuntimeError:
    return RuntimeError(
        f"could not load pretrained {what} weights ({type(err).__name__}: {err}); download them once and pass "
        "the file as `weights: /path/to/file`, or set the perceptual loss to null"
    )


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    """A state dict from a ``.safetensors`` file or a ``torch.save`` file (loaded with ``weights_only``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


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
    """MSE between ImageNet classifier logits of real and reconstructed frames (MAGVIT-v2 appendix and
    google-research/magvit: ResNet-50 logits, weight 0.1 in the tokenizer).

    Input: two ``(B, 3, T, H, W)`` (or ``(B, 3, H, W)``) tensors in ``[−1, 1]``; every frame is resized to
    ``input_size`` and normalized with ImageNet statistics. Output: a 0-dim float32 tensor.

    Args:
        model_name: a timm classifier (``resnet50`` in the paper).
        weights: path of a local ``.pth`` / ``.safetensors`` / ``.bin`` state dict of that timm model; None
            loads timm's pretrained weights (its cache, downloading when online).
        input_size: frames are resized to this square size (224 for ImageNet classifiers); None keeps them.

    Raises (from :meth:`load`, or the first forward):
        FileNotFoundError: ``weights`` does not exist (the message names the path).
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

    def load(self) -> None:
        """Build the frozen classifier with its weights now (idempotent); see the class for the errors."""
        if self._frozen.net is not None:
            return
        import timm

        if self.weights is not None:
            path = _weights_file(self.weights, f"model {self.model_name}")
            net = timm.create_model(self.model_name, pretrained=True, pretrained_cfg_overlay={"file": str(path)})
        else:
            try:
                net = timm.create_model(self.model_name, pretrained=True)
            except Exception as err:
                raise _pretrained_error(f"{self.model_name} (timm)", err) from err
        self._frozen.net = net.eval().requires_grad_(False)

    def logits(self, x: Tensor) -> Tensor:
        """ImageNet logits ``(N, 1000)`` of frames ``(N, 3, H, W)`` in ``[−1, 1]``."""
        self.load()
        x = (x + 1) / 2
        if self.input_size is not None and x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return self._frozen.on(x.device)((x - self.mean.to(x.dtype)) / self.std.to(x.dtype))

    def forward(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        with torch.no_grad():
            target_logits = self.logits(frames(target))
        return F.mse_loss(self.logits(frames(reconstruction)).float(), target_logits.float())


def _copy_backbone(lpips_backbone: nn.Module, features: nn.Sequential) -> None:
    """Copy torchvision ``features`` weights into torchmetrics' LPIPS backbone, whose slices hold the same
    layers under their index in ``features``; raise if any backbone parameter was not covered."""
    copied = 0
    for module in lpips_backbone.modules():
        if isinstance(module, nn.Sequential):
            for name, layer in module.named_children():
                layer.load_state_dict(features[int(name)].state_dict())
                copied += sum(p.numel() for p in layer.parameters())
    total = sum(p.numel() for p in lpips_backbone.parameters())
    if copied != total:  # torchmetrics changed its layout
        raise RuntimeError(f"LPIPS backbone layout not understood: copied {copied} of {total} parameters")


class LPIPSLoss(nn.Module):
    """LPIPS (Zhang et al., arXiv 1801.03924) between frames, through torchmetrics; mean over frames.

    Inputs: ``(B, 3, T, H, W)`` or ``(B, 3, H, W)`` in ``[−1, 1]`` (clamped); output a 0-dim float32 tensor,
    differentiable with respect to the reconstruction. The learned linear layers of LPIPS come bundled with
    torchmetrics (no download); the backbone is an ImageNet classifier's convolutional part.

    Args:
        net_type: ``"vgg"`` (VGG-16, the common substitute for MAGVIT-v2's logits loss), ``"alex"`` (AlexNet)
            or ``"squeeze"`` (SqueezeNet 1.1).
        weights: path of a local torchvision state dict of that backbone (``vgg16``, ``alexnet`` or
            ``squeezenet1_1``, as ``.pth`` or ``.safetensors``: the whole classifier, e.g.
            ``vgg16-397923af.pth``, or only its ``features``); None loads torchvision's pretrained weights
            (its cache under ``TORCH_HOME``, downloading when online).

    Raises:
        ValueError: an unknown ``net_type``; (from :meth:`load`) a ``weights`` file that is not a state
            dict of that backbone.
        FileNotFoundError: (from :meth:`load`) ``weights`` does not exist (the message names the path).
        RuntimeError: (from :meth:`load`) torchvision could not load pretrained weights; the message says
            to pass ``weights``.
    """

    def __init__(self, net_type: str = "vgg", weights: str | None = None) -> None:
        super().__init__()
        if net_type not in _LPIPS_BACKBONES:
            raise ValueError(f"LPIPSLoss net_type must be one of {sorted(_LPIPS_BACKBONES)}, got {net_type!r}")
        self.net_type = net_type
        self.weights = weights
        self._frozen = _FrozenNetwork()

    def load(self) -> None:
        """Build LPIPS with its backbone weights now (idempotent); see the class for the errors."""
        if self._frozen.net is not None:
            return
        import torchvision
        from torchmetrics.functional.image.lpips import _NoTrainLpips

        arch = _LPIPS_BACKBONES[self.net_type]
        if self.weights is None:
            try:  # pnet_rand=False: torchvision's pretrained backbone
                net = _NoTrainLpips(net=self.net_type, pretrained=True, pnet_rand=False)
            except Exception as err:
                raise _pretrained_error(f"LPIPS-{self.net_type} backbone {arch} (torchvision)", err) from err
        else:
            path = _weights_file(self.weights, f"LPIPS-{self.net_type} backbone {arch}")
            state = _read_state_dict(path)
            features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
            classifier = getattr(torchvision.models, arch)(weights=None)
            try:
                classifier.features.load_state_dict(features or state)
            except RuntimeError as err:
                raise ValueError(f"{str(path)!r} is not a torchvision {arch} state dict: {err}") from err
            # pretrained=True loads the bundled linear layers; pnet_rand=True builds the backbone unloaded
            net = _NoTrainLpips(net=self.net_type, pretrained=True, pnet_rand=True)
            _copy_backbone(net.net, classifier.features)
        self._frozen.net = net.eval().requires_grad_(False)

    def forward(self, reconstruction: Tensor, target: Tensor) -> Tensor:
        self.load()
        net = self._frozen.on(reconstruction.device)
        recon, real = frames(reconstruction).float().clamp(-1, 1), frames(target).float().clamp(-1, 1)
        return net(recon, real).mean()
