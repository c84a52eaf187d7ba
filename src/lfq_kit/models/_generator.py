"""The tokenizer's generator: encoder, quantizer and decoder, the part that is EMA-averaged and exported; its
EMA copy and its training loss (MAGVIT-v2, arXiv 2310.05737, Sec. 3 and appendix)."""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..losses import generator_loss
from ..quantizers import Quantizer, QuantizerOutput

__all__ = ["GeneratorObjective", "TokenizerGenerator", "generator_ema", "generator_objective"]


def to_parameter_dtype(x: Tensor, module: nn.Module) -> Tensor:
    """``x`` in the dtype of ``module``'s parameters (a model cast to bf16 or fp16 takes codes in that dtype)."""
    param = next(module.parameters(), None)
    return x if param is None or not param.is_floating_point() else x.to(param.dtype)


class TokenizerGenerator(nn.Module):
    """Encoder, quantizer and decoder (MAGVIT-v2, arXiv 2310.05737, Sec. 3).

    ``encoder``: ``(B, 3, T, H, W)`` → ``(B, D, T', H', W')`` with an ``out_channels`` attribute ``D``;
    ``decoder``: ``(B, D, T', H', W')`` → ``(B, 3, T, H, W)``. The methods check nothing themselves (the
    training loop calls them on every batch); :class:`~lfq_kit.models.VideoTokenizer` checks its inputs.
    """

    def __init__(self, encoder: nn.Module, quantizer: Quantizer, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.quantizer = quantizer
        self.decoder = decoder

    def encode(self, video: Tensor) -> QuantizerOutput:
        """Training path: the quantizer's full forward (codes, indices, loss and its terms)."""
        return self.quantizer(self.encoder(video))

    def encode_indices(self, video: Tensor) -> Tensor:
        """Inference path: ``(B, 3, T, H, W)`` → indices ``(B, T', H', W')`` int64, equal to
        ``encode(video).indices`` in eval mode, without the quantizer's loss or any state update."""
        return self.quantizer.quantize_indices(self.encoder(video))

    def decode_codes(self, quantized: Tensor) -> Tensor:
        """Codes ``(B, D, T', H', W')`` → video ``(B, 3, T, H, W)`` (not clamped)."""
        return self.decoder(quantized)

    def decode_indices(self, indices: Tensor) -> Tensor:
        """Indices ``(B, T', H', W')`` → video ``(B, 3, T, H, W)`` (not clamped); in eval mode the same as
        decoding ``encode(video).quantized`` (the quantizer contract: ``quantized == indices_to_codes(indices)``)."""
        codes = self.quantizer.indices_to_codes(indices)
        return self.decoder(to_parameter_dtype(codes, self.decoder))

    def forward(self, video: Tensor) -> tuple[Tensor, QuantizerOutput]:
        """``(B, 3, T, H, W)`` → (reconstruction, quantizer output), the training step's forward."""
        out = self.encode(video)
        return self.decode_codes(out.quantized), out


def generator_ema(generator: TokenizerGenerator, decay: float | None) -> AveragedModel | None:
    """A frozen EMA copy of ``generator`` (weights only: buffers are not averaged), or None when ``decay`` is None;
    :func:`lfq_kit.models._training.update_ema` advances it after each applied generator step."""
    if decay is None:
        return None
    ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=False)
    ema.requires_grad_(False)
    return ema


class GeneratorObjective(NamedTuple):
    """The generator's loss (0-dim float32) and its terms, detached, under their ``train/*`` log names."""

    loss: Tensor
    logs: dict[str, Tensor]


def generator_objective(
    recon: Tensor,
    video: Tensor,
    quantizer_out: QuantizerOutput,
    perceptual_loss: nn.Module | None,
    discriminator: nn.Module | None,
    reconstruction_weight: float,
    perceptual_weight: float,
    adversarial_weight: float,
) -> GeneratorObjective:
    """``reconstruction_weight · MSE(x̂, x) + quantizer loss + perceptual_weight · P(x̂, x)`` (when there is a
    perceptual loss and its weight is positive) ``+ adversarial_weight · softplus(−D(x̂))`` (when ``discriminator``
    is given: pass None before ``disc_start``). ``recon`` and ``video``: ``(B, 3, T, H, W)`` in ``[−1, 1]``.

    The discriminator's parameters are frozen for its forward and unfrozen after, so the generator's backward
    leaves no gradient in them."""
    rec_loss = F.mse_loss(recon.float(), video.float())
    loss = reconstruction_weight * rec_loss + quantizer_out.loss
    logs = {"train/reconstruction": rec_loss.detach(), "train/quantizer_loss": quantizer_out.loss.detach()}
    if perceptual_loss is not None and perceptual_weight > 0:
        perceptual = perceptual_loss(recon, video)
        loss = loss + perceptual_weight * perceptual
        logs["train/perceptual"] = perceptual.detach()
    if discriminator is not None:
        discriminator.requires_grad_(False)
        adversarial = generator_loss(discriminator(recon))
        discriminator.requires_grad_(True)
        loss = loss + adversarial_weight * adversarial
        logs["train/generator_adversarial"] = adversarial.detach()
    return GeneratorObjective(loss, logs)
