"""A trained tokenizer used by the models that consume its tokens (masked LM, token-target pretraining,
compression): loaded from a checkpoint path, frozen, and never saved inside the consumer's checkpoint.

The consumer keeps the checkpoint *path* in its hyper-parameters and the tokenizer's :func:`tokenizer_hash` in its
checkpoint, so a resumed or reloaded consumer finds out when the tokenizer file changed. The frozen tokenizer tells
the consumer its vocabulary, its compression factors and the token grid of a clip size, and checks a consumer's
expectations against them with errors that name both values.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch import Tensor

from .tokenizer import VideoTokenizer

__all__ = ["FrozenTokenizer", "TokenizeClips", "tokenizer_hash"]

_MAKE_IT = (
    "train one with `lfq-kit fit --config configs/quickstart.yaml` (writes runs/quickstart/checkpoints/last.ckpt)"
)


def tokenizer_hash(tokenizer: VideoTokenizer) -> str:
    """SHA-256 (hex) of what defines the tokens: the classes of encoder, quantizer and decoder, and every tensor
    (name, dtype, shape, bytes) of the inference generator (the EMA weights when there are any).

    Equal for a live model and for the same weights reloaded from its checkpoint; any changed weight changes it.
    """
    gen = tokenizer.inference_generator
    digest = hashlib.sha256()
    for part in (gen.encoder, gen.quantizer, gen.decoder):
        digest.update(f"{type(part).__module__}.{type(part).__qualname__};".encode())
    digest.update(f"codebook_size={gen.quantizer.codebook_size};".encode())
    for name, tensor in sorted(gen.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class FrozenTokenizer:
    """A :class:`VideoTokenizer` loaded from ``checkpoint`` in eval mode with gradients off.

    It is a plain object, not an ``nn.Module``, so a LightningModule that holds it neither trains it nor saves
    its weights; it moves to the device of each input on use.

    Args:
        checkpoint: path of a ``VideoTokenizer`` checkpoint (``lfq-kit fit`` writes them).

    Raises:
        FileNotFoundError: no file at ``checkpoint`` (the message says which command makes one).
        ValueError: the file is not a tokenizer checkpoint.
    """

    def __init__(self, checkpoint: str | Path) -> None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer checkpoint {str(path)!r} not found; {_MAKE_IT}")
        try:
            model = VideoTokenizer.load_from_checkpoint(path, map_location="cpu")
        except (KeyError, TypeError, RuntimeError) as err:
            raise ValueError(f"{str(path)!r} is not a loadable VideoTokenizer checkpoint: {err}") from err
        self.path = str(path)
        self.model = model.eval().requires_grad_(False)
        self.hash = tokenizer_hash(self.model)

    # -- what consumers ask --------------------------------------------------------------------------

    @property
    def codebook_size(self) -> int:
        """Vocabulary size ``K`` (token ids lie in ``[0, K)``)."""
        return int(self.model.quantizer.codebook_size)

    @property
    def temporal_compression(self) -> int:
        """Frames per latent frame (4 for MAGVIT-v2; the first frame is encoded alone when causal)."""
        return int(self.model.encoder.temporal_compression)

    @property
    def spatial_compression(self) -> int:
        """Pixels per token along H and along W."""
        return int(self.model.encoder.spatial_compression)

    @property
    def causal(self) -> bool:
        return bool(self.model.encoder.causal)

    def token_grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """The token grid ``(T', H', W')`` of a ``frames × height × width`` clip (17 × 64 × 64 → 5 × 8 × 8).

        Raises:
            ValueError: a clip size the encoder does not accept (the message lists valid lengths).
        """
        return tuple(int(v) for v in self.model.encoder.latent_shape(frames, height, width))

    def latent_frames(self, frames: int) -> int:
        """Latent frames that exactly cover the first ``frames`` frames (5 → 2 for the causal 4× tokenizer).

        Raises:
            ValueError: ``frames`` does not end on a latent frame boundary (``1 + 4k`` for causal 4×).
        """
        s = self.spatial_compression
        return self.token_grid(frames, s, s)[0]

    def check(
        self,
        codebook_size: int | None = None,
        grid: tuple[int, int, int] | None = None,
        clip_size: tuple[int, int, int] | None = None,
        consumer: str = "model",
    ) -> None:
        """Raise ``ValueError`` naming both values when the consumer's vocabulary or grid disagrees with this
        tokenizer's (the grid is checked against the grid of ``clip_size = (T, H, W)``)."""
        if codebook_size is not None and int(codebook_size) != self.codebook_size:
            raise ValueError(
                f"{consumer} expects a vocabulary of {codebook_size} tokens but the tokenizer {self.path!r} has "
                f"codebook_size {self.codebook_size}"
            )
        if grid is not None and clip_size is not None:
            expected = self.token_grid(*clip_size)
            if tuple(grid) != expected:
                raise ValueError(
                    f"{consumer} expects a token grid {tuple(grid)} but the tokenizer {self.path!r} makes "
                    f"{expected} from {tuple(clip_size)} clips"
                )

    # -- tokens --------------------------------------------------------------------------------------

    def _on(self, device: torch.device) -> VideoTokenizer:
        if self.model.device != device:
            self.model.to(device)
        return self.model

    @torch.no_grad()
    def encode(self, video: Tensor) -> Tensor:
        """``(B, 3, T, H, W)`` float pixels in ``[−1, 1]`` → token ids ``(B, T', H', W')`` int64."""
        return self._on(video.device).encode(video)

    @torch.no_grad()
    def decode(self, indices: Tensor) -> Tensor:
        """Token ids ``(B, T', H', W')`` → video ``(B, 3, T, H, W)`` float32 in ``[−1, 1]``."""
        return self._on(indices.device).decode(indices).float()

    def __repr__(self) -> str:
        return f"FrozenTokenizer({self.path!r}, codebook_size={self.codebook_size}, hash={self.hash[:12]})"


# -- tokens once ---------------------------------------------------------------------------------------


class TokenizeClips(L.LightningModule):
    """Predict-only module: ``{"video": (B, 3, T, H, W) float in [−1, 1], "label", "frame_indices", ...}`` →
    ``{"indices": (B, T', H', W') int64, "label", "video_id", "clip_start"}`` (:meth:`VideoTokenizer.predict_step`).

    Tokens once: ``lfq-kit predict --config configs/quickstart_tokens.yaml`` writes, with
    :class:`lfq_kit.callbacks.TokenWriter`, the token shards a masked LM trains on. The config names the tokenizer
    by its checkpoint path, as the masked LM does, so a chain from a fresh clone needs no ``--ckpt_path``.

    Args:
        tokenizer: path of a ``VideoTokenizer`` checkpoint, loaded frozen (:class:`FrozenTokenizer`).

    Raises:
        FileNotFoundError: no file at ``tokenizer`` (the message says which command makes it).
    """

    def __init__(self, tokenizer: str) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.frozen_tokenizer = FrozenTokenizer(tokenizer)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        model = self.frozen_tokenizer.model.to(batch["video"].device)
        return model.predict_step(batch, batch_idx, dataloader_idx)
