"""Masked video pretraining of a video ViT (VideoMAE, arXiv 2203.12602) with normalized-pixel or tokenizer-token
targets (MAGVIT-v2, arXiv 2310.05737, video understanding experiments).

Each step draws tube masks (:mod:`lfq_kit.models._tube_masking`), encodes the visible tokens only, and a light
decoder (:class:`lfq_kit.backbones.masked_decoder.MaskedDecoder`) predicts the masked positions:

- ``target: pixels``: VideoMAE's per-tubelet normalized pixels (:mod:`lfq_kit.models._pixel_targets`), mean
  squared error over the masked tubelets.
- ``target: tokens``: the ids a frozen tokenizer gives the clip, cross-entropy over the masked positions
  through the factorized tied heads of :class:`lfq_kit.nn.FactorizedTokens` (two 512-way heads for 2^18 ids).
  Each ViT token predicts exactly one id, so the ViT grid must equal the token grid: for MAGVIT-v2's causal
  4× temporal, 8× spatial tokenizer use ``tubelet_size: 4, patch_size: 8, first_frame_patch: true`` (17 × 128 ×
  128 → 5 × 16 × 16; 17 × 64 × 64 → 5 × 8 × 8). A mismatch is refused with both grids in the message.

Optimizer (VideoMAE's pretraining recipe): AdamW, β = (0.9, 0.95), weight decay 0.05 (not on biases, norms,
position embeddings, the mask token or the head tables), learning rate ``base_lr · effective batch / 256``,
linear warm-up then cosine decay (:class:`lfq_kit.models.WarmupCosine`).
"""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn
from torchmetrics import MeanMetric

from ..backbones.masked_decoder import MaskedDecoder, videomae_decoder_size
from ..nn.factorized_tokens import FactorizedTokens
from ._hparams import save_init_config
from ._nonfinite import NonFiniteGuard, SkipNonFiniteSteps
from ._pixel_targets import normalized_tubelets
from ._pretrained import load_backbone_weights
from ._step_seed import StepSeeded
from ._token_consumer import TokenConsumer
from ._training import (
    build_optimizer,
    compile_modules,
    effective_batch,
    no_weight_decay,
    recipe_adamw,
    scaled_lr,
    step_scheduler,
    weight_decay_groups,
)
from ._tube_masking import tube_mask
from .frozen_tokenizer import FrozenTokenizer

__all__ = ["VideoMAEPretraining", "no_weight_decay", "scaled_lr"]

TargetKind = Literal["pixels", "tokens"]
_ENCODER_ATTRS = ("grid", "num_tokens", "dim", "clip_size", "tubelet_size", "patch_size", "first_frame_patch")


class VideoMAEPretraining(StepSeeded, SkipNonFiniteSteps, TokenConsumer, L.LightningModule):
    """Tube-masked pretraining of a video ViT encoder. Batches are dicts with ``"video"`` ``(B, 3, T, H, W)``
    float in ``[−1, 1]`` of the encoder's ``clip_size``.

    Logs ``train/loss`` (MSE of normalized pixels, or summed sub-token cross-entropy in nats) and ``val/loss``
    (the same loss with a fixed mask per batch index).

    Args:
        encoder: a :class:`lfq_kit.backbones.VideoViT` (any module with its ``grid``, ``dim``, ``clip_size``,
            ``tubelet_size``, ``patch_size``, ``first_frame_patch`` and ``forward(video, visible)``).
        target: ``"pixels"`` or ``"tokens"``.
        tokenizer: path of a tokenizer checkpoint (:class:`FrozenTokenizer`); required for ``target: tokens``.
        num_groups: sub-token groups of the token heads (2 for 2^18 ids; 1 for no factorization).
        mask_ratio: fraction of each frame's positions masked (0.9; VideoMAE's UCF-101 recipe 0.75).
        decoder_dim, decoder_depth, decoder_heads: the light decoder: 4 blocks; width and heads None: VideoMAE's
            for the encoder width (ViT-S 192 × 3 heads, ViT-B 384 × 6, ViT-L 512 × 8; others half the encoder
            width), see :func:`lfq_kit.backbones.masked_decoder.videomae_decoder_size`.
        pretrained: a checkpoint whose weights start this run, all of them (encoder, decoder, mask token, head):
            e.g. what ``lfq-kit convert videomae`` writes from VideoMAE's released pretraining (docs/pretrained.md),
            to continue that pretraining. Loaded when ``fit`` sets the model up, with every key matching unless
            named in ``pretrained_skip_keys`` (shell patterns, e.g. ``head.*`` for token targets); not read when
            ``--ckpt_path`` resumes a run. None: from scratch.
        pretrained_skip_keys: see ``pretrained``.
        decoder_norm_eps, decoder_final_norm_eps: epsilon of the decoder blocks' LayerNorms and of its final one
            (None: the same), see :class:`~lfq_kit.backbones.masked_decoder.MaskedDecoder` (PyTorch's 1e-5;
            MCG-NJU VideoMAE 1e-6 for both; transformers 1e-12 and 1e-5).
        base_lr: learning rate per 256 clips of effective batch (1.5e-4).
        lr: an absolute learning rate instead of the scaled ``base_lr`` (None: scaled).
        betas, weight_decay: AdamW's ((0.9, 0.95), 0.05).
        warmup_steps: linear warm-up (optimizer steps).
        decay_steps: end of the cosine decay; None: ``trainer.max_steps`` when set, else none.
        min_lr_ratio: final learning rate as a fraction of the peak.
        max_nonfinite_steps: a step whose loss is NaN or infinite is skipped (weights, optimizer and schedule
            unchanged, counted in ``train/nonfinite_skipped``); after this many in a row the run stops with
            :class:`~lfq_kit.models._nonfinite.NonFiniteLossError`.
        optimizer: optimizer factory (``class_path`` + ``init_args`` in YAML, its own ``lr``); None: AdamW with
            ``lr``/``base_lr``, ``betas`` and ``weight_decay`` above.
        compile: ``torch.compile`` the encoder and decoder in ``configure_model`` (targets and heads stay eager).

    Training re-seeds torch's global generator at every batch (:class:`~lfq_kit.models._step_seed.StepSeeded`),
    so tube masks and drop path are the same in a resumed run as in one never stopped. ``val/loss`` is a clip-weighted
    :class:`~torchmetrics.MeanMetric`: over several ranks (unpadded, uneven shards) it is the mean over every clip.

    Raises:
        ValueError: an unknown target, ``tokens`` without a tokenizer, an encoder without the attributes above,
            or a ViT grid other than the token grid (both grids and the clip size named); at run time a batch
            of another clip size; at setup a ``pretrained`` checkpoint that does not match (keys listed).
        FileNotFoundError: ``tokenizer`` does not exist; ``pretrained`` does not exist (at setup).
    """

    def __init__(
        self,
        encoder: nn.Module,
        target: TargetKind = "pixels",
        tokenizer: str | None = None,
        num_groups: int = 2,
        mask_ratio: float = 0.9,
        decoder_dim: int | None = None,
        decoder_depth: int = 4,
        decoder_heads: int | None = None,
        base_lr: float = 1.5e-4,
        lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.95),
        weight_decay: float = 0.05,
        warmup_steps: int = 40,
        decay_steps: int | None = None,
        min_lr_ratio: float = 0.0,
        max_nonfinite_steps: int = 3,
        decoder_norm_eps: float = 1e-5,
        decoder_final_norm_eps: float | None = None,
        pretrained: str | None = None,
        pretrained_skip_keys: list[str] | None = None,
        optimizer: OptimizerCallable | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        save_init_config(self)
        self.nonfinite_guard = NonFiniteGuard(max_nonfinite_steps)
        self.val_loss = MeanMetric()
        missing = [a for a in _ENCODER_ATTRS if not hasattr(encoder, a)]
        if missing:
            raise ValueError(f"encoder {type(encoder).__name__} lacks {', '.join(missing)}; use a VideoViT")
        if target not in ("pixels", "tokens"):
            raise ValueError(f"target must be 'pixels' or 'tokens', got {target!r}")
        tube_mask(1, encoder.grid, mask_ratio)  # validates the ratio against the grid now, not at step 1
        self.encoder = encoder
        self.target = target
        self.loaded_keys: list[str] = []  # filled by load_pretrained(), at setup
        self.optimizer_factory = optimizer
        self._compiled = False
        self.grid = tuple(encoder.grid)
        decoder_dim, decoder_heads = videomae_decoder_size(encoder.dim, decoder_dim, decoder_heads)
        self.decoder = MaskedDecoder(
            encoder.num_tokens,
            encoder.dim,
            decoder_dim,
            decoder_depth,
            decoder_heads,
            norm_eps=decoder_norm_eps,
            final_norm_eps=decoder_final_norm_eps,
        )
        self.frozen_tokenizer = None
        if target == "tokens":
            if tokenizer is None:
                raise ValueError("target 'tokens' needs `tokenizer`: the path of a tokenizer checkpoint")
            self.frozen_tokenizer = FrozenTokenizer(tokenizer)
            token_grid = self.frozen_tokenizer.token_grid(*encoder.clip_size)
            if token_grid != self.grid:
                raise ValueError(
                    f"the ViT grid {self.grid} (clip {encoder.clip_size}, tubelet {encoder.tubelet_size} x "
                    f"{encoder.patch_size} x {encoder.patch_size}, first_frame_patch={encoder.first_frame_patch}) "
                    f"differs from the token grid {token_grid} of tokenizer {tokenizer!r}; for a causal 4x/8x "
                    "tokenizer use tubelet_size 4, patch_size 8, first_frame_patch true"
                )
            self.tokens = FactorizedTokens(
                self.frozen_tokenizer.codebook_size, decoder_dim, num_groups, mask_token=False
            )
            self.head = nn.Identity()
        else:
            c, t, p = getattr(encoder, "in_channels", 3), encoder.tubelet_size, encoder.patch_size
            self.head = nn.Linear(decoder_dim, t * p * p * c)

    # -- pretrained weights ----------------------------------------------------------------------------

    def load_pretrained(self) -> list[str]:
        """Load every tensor of the ``pretrained`` checkpoint now (exact key match unless ``pretrained_skip_keys``);
        returns the loaded keys (also in ``loaded_keys``; empty without ``pretrained``).

        Raises:
            FileNotFoundError: no file at ``pretrained``.
            ValueError: the checkpoint does not match this model (keys listed).
        """
        hp = self.hparams
        if hp.pretrained is not None:
            self.loaded_keys = load_backbone_weights(self, hp.pretrained, "", hp.pretrained_skip_keys)
        return self.loaded_keys

    def setup(self, stage: str) -> None:
        """Load ``pretrained`` once per run, unless the trainer restores a ``ckpt_path`` (its weights win)."""
        restoring = self._trainer is not None and self.trainer.ckpt_path is not None
        if self.hparams.pretrained is not None and not self.loaded_keys and not restoring:
            self.load_pretrained()

    def configure_model(self) -> None:
        """Lightning hook (under the strategy): ``torch.compile`` the encoder and decoder in place when ``compile``."""
        compile_modules(self, [self.encoder, self.decoder])

    # -- one step --------------------------------------------------------------------------------------

    def _video(self, batch: dict[str, Any]) -> Tensor:
        if "video" not in batch:
            raise ValueError(f"a VideoMAEPretraining batch needs 'video', got keys {sorted(batch)}")
        video = batch["video"]
        if tuple(video.shape[2:]) != tuple(self.encoder.clip_size):
            raise ValueError(
                f"batch clips are {tuple(video.shape[2:])}, the encoder's clip_size is {tuple(self.encoder.clip_size)}"
            )
        return video

    def targets(self, video: Tensor, masked: Tensor) -> Tensor:
        """Targets at the ``masked`` ``(B, K)`` positions: ``(B, K, t·p·p·C)`` float32 normalized pixels, or
        ``(B, K)`` int64 token ids."""
        if self.target == "tokens":
            ids = self.frozen_tokenizer.encode(video).flatten(1)  # (B, N), same raster order as the ViT
            return ids.gather(1, masked)
        pixels = normalized_tubelets(
            video, self.encoder.tubelet_size, self.encoder.patch_size, self.encoder.first_frame_patch
        )
        return pixels.gather(1, masked[..., None].expand(-1, -1, pixels.shape[-1]))

    def loss(self, video: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The masked-prediction loss of one batch ``(B, 3, T, H, W)`` (a scalar)."""
        m = tube_mask(video.shape[0], self.grid, self.hparams.mask_ratio, video.device, generator)
        features = self.encoder(video, m.visible)
        predicted = self.head(self.decoder(features, m.visible, m.masked))
        target = self.targets(video, m.masked)
        if self.target == "tokens":
            return self.tokens.loss(self.tokens.logits(predicted), target)
        return F.mse_loss(predicted.float(), target)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss = self.loss(self._video(batch))
        self.log("train/loss", loss.detach(), prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        video = self._video(batch)
        generator = torch.Generator(device=video.device).manual_seed(batch_idx)
        self.val_loss.update(self.loss(video, generator), weight=video.shape[0])
        self.log("val/loss", self.val_loss, prog_bar=True)

    # -- optimizer -------------------------------------------------------------------------------------

    def effective_batch(self) -> int:
        """Clips per optimizer step (:func:`lfq_kit.models._training.effective_batch`)."""
        return effective_batch(self._trainer)

    def configure_optimizers(self) -> Any:
        factory = self.optimizer_factory or recipe_adamw(self)
        return step_scheduler(build_optimizer(factory, self, weight_decay_groups(self)), self)
