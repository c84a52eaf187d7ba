"""The tokenizer's generator: encoder, quantizer and decoder, the part that is EMA-averaged and exported."""

from __future__ import annotations

from torch import Tensor, nn

from ..quantizers import Quantizer, QuantizerOutput

__all__ = ["TokenizerGenerator"]


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
