"""The MAGVIT-v2 video tokenizer as a LightningModule: encoder → quantizer → decoder, trained with L2,
perceptual and GAN losses (Yu et al., arXiv 2310.05737, Sec. 3; training facts in the reference Sec. 3).

Two optimizers step once per batch each (generator, then discriminator) under manual optimization.
Lightning's ``global_step`` counts every optimizer step (Lightning issue 17958), so with a discriminator
``global_step = 2 × generator steps``: ``trainer.max_steps`` must be twice the number of generator steps.
Everything this module schedules (warm-up, cosine decay, ``disc_start``, entropy annealing, lazy R1)
counts generator steps, :attr:`VideoTokenizer.generator_step`.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Any, Callable

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from ..losses import LeCAM, discriminator_loss, generator_loss, r1_penalty
from ..losses.perceptual import frames
from ..metrics import CodebookUsage
from ..quantizers import LFQ, Quantizer, QuantizerOutput
from .schedules import WarmupCosine

__all__ = ["TokenizerGenerator", "VideoTokenizer", "check_video"]


def check_video(video: Tensor, check_range: bool = True) -> None:
    """Raise ``ValueError`` unless ``video`` is a float ``(B, 3, T, H, W)`` tensor with pixels in ``[−1, 1]``.

    Invariant 12: a uint8 batch or floats in ``[0, 255]`` are refused, not silently trained on.
    """
    if video.ndim != 5:
        raise ValueError(f"expected a video batch (B, C, T, H, W), got shape {tuple(video.shape)}")
    if not video.is_floating_point():
        raise ValueError(
            f"expected float pixels in [-1, 1], got dtype {video.dtype}; convert uint8 frames with x / 127.5 - 1"
        )
    if check_range:
        lo, hi = torch.aminmax(video.detach())
        if lo < -1.0 - 1e-3 or hi > 1.0 + 1e-3:
            raise ValueError(
                f"expected pixels in [-1, 1], got values in [{lo.item():.3g}, {hi.item():.3g}]"
                + ("; [0, 255] inputs must be scaled with x / 127.5 - 1" if hi > 2 else "")
            )


def _default_adam(params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-4, betas=(0.0, 0.99))


class TokenizerGenerator(nn.Module):
    """Encoder, quantizer and decoder: the part of the tokenizer that is EMA-averaged and exported.

    ``encoder``: ``(B, 3, T, H, W)`` → ``(B, D, T', H', W')`` with an ``out_channels`` attribute ``D``;
    ``decoder``: ``(B, D, T', H', W')`` → ``(B, 3, T, H, W)``.
    """

    def __init__(self, encoder: nn.Module, quantizer: Quantizer, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.quantizer = quantizer
        self.decoder = decoder

    def encode(self, video: Tensor) -> QuantizerOutput:
        return self.quantizer(self.encoder(video))

    def decode_codes(self, quantized: Tensor) -> Tensor:
        return self.decoder(quantized)

    def forward(self, video: Tensor) -> tuple[Tensor, QuantizerOutput]:
        out = self.encode(video)
        return self.decode_codes(out.quantized), out


class VideoTokenizer(L.LightningModule):
    """MAGVIT-v2 tokenizer training: a generator (encoder, quantizer, decoder) and an optional discriminator.

    Generator loss per batch::

        reconstruction_weight · MSE(x̂, x) + perceptual_weight · P(x̂, x)
        + adversarial_weight · softplus(−D(x̂)) [after disc_start] + quantizer loss

    Discriminator loss (after ``disc_start``): non-saturating loss + ``lecam_weight`` · LeCAM
    + ``r1_weight · r1_every`` · R1 every ``r1_every`` generator steps (lazy regularization, StyleGAN2).

    Videos are float ``(B, 3, T, H, W)`` in ``[−1, 1]``; batches are dicts with key ``"video"``.

    Args:
        encoder: ``(B, 3, T, H, W)`` → ``(B, D, T', H', W')``; must expose ``out_channels`` (= ``D``).
        decoder: ``(B, D, T', H', W')`` → ``(B, 3, T, H, W)``.
        quantizer: a quantizer class (or factory) called with ``D``: ``LFQ``, ``VQ``, ``FSQ``, ``BSQ`` or a
            plugin; in YAML ``class_path`` plus the ``init_args`` other than ``dim``.
        discriminator: ``(B, 3, T, H, W)`` → ``(B, 1)`` logits; None trains without a GAN.
        perceptual_loss: ``(x̂, x)`` → 0-dim loss (``LogitsPerceptualLoss``, ``LPIPSLoss``) or None.
        reconstruction_weight: weight of the pixel MSE (reference: 1).
        perceptual_weight: weight of the perceptual loss (reference: 0.1).
        adversarial_weight: weight of the generator's GAN loss (reference: 0.1).
        disc_start: generator step at which the discriminator and the GAN loss start.
        r1_weight: R1 gradient-penalty cost (reference: 10); 0 disables it.
        r1_every: apply R1 every this many generator steps, scaled by it (lazy regularization).
        lecam_weight: LeCAM weight (reference: 0.001); 0 disables it.
        lecam_decay: EMA decay of LeCAM's logit averages (reference: 0.999).
        generator_optimizer: optimizer factory for the generator; None is Adam(lr=1e-4, betas=(0, 0.99)).
        discriminator_optimizer: the same for the discriminator.
        warmup_steps: linear learning-rate warm-up, in generator steps.
        decay_steps: cosine decay ends here (generator steps); None: ``trainer.max_steps`` in generator
            steps when it is set, else no decay.
        min_lr_ratio: final learning rate as a fraction of the initial one.
        gradient_clip_val: gradient-norm clipping for both optimizers; None disables it.
        ema_decay: decay of the generator's weight EMA (reference: 0.999), used for validation, export,
            :meth:`encode` and :meth:`decode`; None disables the EMA. The discriminator is never averaged.

    Raises:
        ValueError: an encoder without ``out_channels``; invalid weights or steps; at run time, a video
            batch that is not float in ``[−1, 1]`` or whose shape the encoder rejects.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        quantizer: Callable[[int], Quantizer] = LFQ,
        discriminator: nn.Module | None = None,
        perceptual_loss: nn.Module | None = None,
        reconstruction_weight: float = 1.0,
        perceptual_weight: float = 0.1,
        adversarial_weight: float = 0.1,
        disc_start: int = 0,
        r1_weight: float = 10.0,
        r1_every: int = 16,
        lecam_weight: float = 0.001,
        lecam_decay: float = 0.999,
        generator_optimizer: OptimizerCallable | None = None,
        discriminator_optimizer: OptimizerCallable | None = None,
        warmup_steps: int = 0,
        decay_steps: int | None = None,
        min_lr_ratio: float = 0.0,
        gradient_clip_val: float | None = 1.0,
        ema_decay: float | None = 0.999,
    ) -> None:
        super().__init__()
        self._save_config()
        self.automatic_optimization = False
        latent_channels = getattr(encoder, "out_channels", None)
        if not isinstance(latent_channels, int):
            raise ValueError(f"encoder {type(encoder).__name__} must expose an integer `out_channels` attribute")
        if r1_every < 1 or disc_start < 0 or warmup_steps < 0:
            raise ValueError(f"r1_every must be >= 1, disc_start and warmup_steps >= 0; got {r1_every}, {disc_start}, {warmup_steps}")
        self.generator = TokenizerGenerator(encoder, quantizer(latent_channels), decoder)
        self.discriminator = discriminator
        self.perceptual_loss = perceptual_loss
        self.lecam = LeCAM(lecam_decay)
        self.ema = (
            AveragedModel(self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=False)
            if ema_decay is not None
            else None
        )
        if self.ema is not None:
            self.ema.requires_grad_(False)
        self.generator_optimizer = generator_optimizer or _default_adam
        self.discriminator_optimizer = discriminator_optimizer or _default_adam
        codebook_size = self.generator.quantizer.codebook_size
        self.val_psnr = PeakSignalNoiseRatio(data_range=2.0)
        self.val_ssim = StructuralSimilarityIndexMeasure(data_range=2.0)
        self.val_usage = CodebookUsage(codebook_size)
        self._range_checked = False

    def _save_config(self) -> None:
        """Save the init arguments for ``load_from_checkpoint``: under LightningCLI they are the config
        (class paths and init args), so the model is rebuilt from it. Objects given from Python (modules,
        classes, factories) are dropped: modules' weights are in the state dict already, and plain values
        keep checkpoints loadable with ``torch.load(weights_only=True)``."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`.*")
            self.save_hyperparameters(frame=inspect.currentframe().f_back)
        for key in [k for k, v in self.hparams.items() if isinstance(v, nn.Module) or callable(v)]:
            del self.hparams[key]

    # -- public API ------------------------------------------------------------------------------

    @property
    def encoder(self) -> nn.Module:
        return self.generator.encoder

    @property
    def quantizer(self) -> Quantizer:
        return self.generator.quantizer

    @property
    def decoder(self) -> nn.Module:
        return self.generator.decoder

    @property
    def steps_per_batch(self) -> int:
        """Optimizer steps per batch: 2 with a discriminator, else 1 (Lightning's ``global_step`` counts both)."""
        return 2 if self.discriminator is not None else 1

    @property
    def generator_step(self) -> int:
        """Generator optimizer steps taken so far (``global_step // steps_per_batch``)."""
        return self.global_step // self.steps_per_batch

    @property
    def inference_generator(self) -> TokenizerGenerator:
        """The EMA generator when there is one, else the live generator."""
        return self.ema.module if self.ema is not None else self.generator

    @torch.no_grad()
    def encode(self, video: Tensor) -> Tensor:
        """``(B, 3, T, H, W)`` float in ``[−1, 1]`` → token indices ``(B, T', H', W')`` int64 (EMA weights).

        Raises:
            ValueError: a non-float video, pixels outside ``[−1, 1]``, or a shape the encoder rejects
                (for MAGVIT-v2's causal encoder, ``T = 1 + 4k``).
        """
        check_video(video)
        return self.inference_generator.encode(video).indices

    @torch.no_grad()
    def decode(self, indices: Tensor) -> Tensor:
        """Token indices ``(B, T', H', W')`` → video ``(B, 3, T, H, W)`` in ``[−1, 1]`` (EMA weights).

        Raises:
            ValueError: indices outside ``[0, codebook_size)`` or not an integer tensor.
        """
        q = self.quantizer
        if indices.is_floating_point() or indices.ndim < 2:
            raise ValueError(f"expected integer token indices (B, T', H', W'), got {indices.dtype} {tuple(indices.shape)}")
        lo, hi = torch.aminmax(indices)
        if lo < 0 or hi >= q.codebook_size:
            raise ValueError(f"token indices must lie in [0, {q.codebook_size}), got [{lo.item()}, {hi.item()}]")
        gen = self.inference_generator
        codes = gen.quantizer.indices_to_codes(indices).to(self.dtype)
        return gen.decode_codes(codes).clamp(-1.0, 1.0)

    def forward(self, video: Tensor) -> tuple[Tensor, QuantizerOutput]:
        """Reconstruct with the live generator: ``(B, 3, T, H, W)`` → (reconstruction, quantizer output)."""
        return self.generator(video)

    # -- training --------------------------------------------------------------------------------

    def configure_optimizers(self) -> Any:
        max_steps = self.trainer.max_steps if self._trainer is not None else -1
        decay = self.hparams.decay_steps
        if decay is None and max_steps and max_steps > 0:
            decay = max_steps // self.steps_per_batch
        schedule = WarmupCosine(self.hparams.warmup_steps, decay, self.hparams.min_lr_ratio)
        opt_g = self.generator_optimizer(self.generator.parameters())
        configs = [{"optimizer": opt_g, "lr_scheduler": LambdaLR(opt_g, schedule)}]
        if self.discriminator is not None:
            opt_d = self.discriminator_optimizer(self.discriminator.parameters())
            configs.append({"optimizer": opt_d, "lr_scheduler": LambdaLR(opt_d, WarmupCosine(**vars(schedule)))})
        return configs

    def _video(self, batch: dict[str, Tensor]) -> Tensor:
        video = batch["video"]
        check_video(video, check_range=not self._range_checked)  # full range check once per run: no sync per step
        self._range_checked = True
        return video

    def _step_optimizer(self, index: int, loss: Tensor) -> None:
        optimizers = self.optimizers()
        opt = optimizers[index] if isinstance(optimizers, list) else optimizers
        schedulers = self.lr_schedulers()
        sched = schedulers[index] if isinstance(schedulers, list) else schedulers
        opt.zero_grad(set_to_none=True)
        if loss.requires_grad:
            self.manual_backward(loss)
            if self.hparams.gradient_clip_val:
                self.clip_gradients(opt, gradient_clip_val=self.hparams.gradient_clip_val, gradient_clip_algorithm="norm")
        opt.step()  # also before disc_start (no gradients, no update) so global_step advances uniformly
        sched.step()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        video = self._video(batch)
        step = self.generator_step
        gan_active = self.discriminator is not None and step >= self.hparams.disc_start
        self.quantizer.set_step(step)

        # generator
        recon, qout = self.generator(video)
        rec_loss = F.mse_loss(recon.float(), video.float())
        g_loss = self.hparams.reconstruction_weight * rec_loss + qout.loss
        logs = {"train/reconstruction": rec_loss.detach(), "train/quantizer_loss": qout.loss.detach()}
        if self.perceptual_loss is not None and self.hparams.perceptual_weight > 0:
            perceptual = self.perceptual_loss(recon, video)
            g_loss = g_loss + self.hparams.perceptual_weight * perceptual
            logs["train/perceptual"] = perceptual.detach()
        if gan_active:
            self.discriminator.requires_grad_(False)
            adversarial = generator_loss(self.discriminator(recon))
            self.discriminator.requires_grad_(True)
            g_loss = g_loss + self.hparams.adversarial_weight * adversarial
            logs["train/generator_adversarial"] = adversarial.detach()
        self._step_optimizer(0, g_loss)
        if self.ema is not None:
            self._update_ema()

        # discriminator
        if self.discriminator is not None:
            d_loss = torch.zeros((), device=video.device)
            if gan_active:
                d_loss = self._discriminator_loss(video, recon.detach(), step, logs)
            self._step_optimizer(1, d_loss)

        logs["train/loss"] = g_loss.detach()
        logs.update({f"train/{k}": v for k, v in qout.metrics.items()})
        self.log_dict(logs, prog_bar=False)
        self.log("train/psnr", _psnr(recon.detach(), video), prog_bar=True)
        return g_loss.detach()

    def _discriminator_loss(self, real: Tensor, fake: Tensor, step: int, logs: dict[str, Tensor]) -> Tensor:
        hp = self.hparams
        lazy_r1 = hp.r1_weight > 0 and step % hp.r1_every == 0
        if lazy_r1:
            real = real.detach().requires_grad_(True)
        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
        loss = discriminator_loss(real_logits, fake_logits)
        logs["train/discriminator"] = loss.detach()
        if hp.lecam_weight > 0:
            lecam = self.lecam(real_logits, fake_logits)
            self.lecam.update(real_logits, fake_logits)
            loss = loss + hp.lecam_weight * lecam
            logs["train/lecam"] = lecam.detach()
        if lazy_r1:
            r1 = r1_penalty(real_logits, real)
            loss = loss + hp.r1_weight * hp.r1_every * r1
            logs["train/r1"] = r1.detach()
        logs["train/logits_real"] = real_logits.detach().float().mean()
        logs["train/logits_fake"] = fake_logits.detach().float().mean()
        return loss

    @torch.no_grad()
    def _update_ema(self) -> None:
        self.ema.update_parameters(self.generator)
        # Buffers (a VQ codebook under EMA updates, the quantizer's step) follow the live model.
        for ema_buffer, buffer in zip(self.ema.module.buffers(), self.generator.buffers()):
            ema_buffer.copy_(buffer)

    # -- evaluation ------------------------------------------------------------------------------

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        video = batch["video"]
        check_video(video, check_range=batch_idx == 0)
        gen = self.inference_generator
        out = gen.encode(video)
        recon = gen.decode_codes(out.quantized).clamp(-1.0, 1.0)
        self.val_psnr.update(recon.float(), video.float())
        self.val_ssim.update(frames(recon).float(), frames(video).float())
        self.val_usage.update(out.indices)
        self.log("val/psnr", self.val_psnr, prog_bar=True)
        self.log("val/ssim", self.val_ssim)
        self.log("val/reconstruction", F.mse_loss(recon.float(), video.float()))
        self.log_dict({f"val/{k}": v for k, v in out.metrics.items()})

    def on_validation_epoch_end(self) -> None:
        usage = self.val_usage.compute()
        self.log_dict({f"val/codebook_{k}": v for k, v in usage.items()})
        self.val_usage.reset()

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self.on_validation_epoch_end()

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Token indices of a batch plus its identifiers, for :class:`lfq_kit.callbacks.TokenWriter`."""
        out = {"indices": self.encode(batch["video"])}
        for key in ("label", "video_id", "clip_start"):
            if key in batch:
                out[key] = batch[key]
        if "clip_start" not in out and "frame_indices" in batch:  # video data modules: first source frame
            out["clip_start"] = batch["frame_indices"][:, 0]
        return out


def _psnr(recon: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB of ``[−1, 1]`` videos (data range 2), over the whole batch."""
    mse = F.mse_loss(recon.float().clamp(-1, 1), target.float())
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-10))
