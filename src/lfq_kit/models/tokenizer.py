"""The MAGVIT-v2 video tokenizer as a LightningModule: encoder → quantizer → decoder, trained with L2,
perceptual and GAN losses (Yu et al., arXiv 2310.05737, Sec. 3 and appendix; docs/tokenizer.md).

Two optimizers step once per ``accumulate_grad_batches`` batches each (generator, then discriminator) under
manual optimization with gradient accumulation (:mod:`lfq_kit.models._manual_steps`).
Lightning's ``global_step`` counts every optimizer step (Lightning-AI/pytorch-lightning#17958), so with a discriminator
``global_step = 2 × generator steps``: ``trainer.max_steps`` must be twice the number of generator steps.
Everything this module schedules (warm-up, cosine decay, ``disc_start``, entropy annealing, lazy R1)
counts generator steps, :attr:`VideoTokenizer.generator_step`.

The discriminator's loss is computed on the generator's output before the generator's optimizer step (it reads
``x̂`` detached and its own weights only, so the order changes no value); both losses are then checked for NaN and
infinity in one decision per batch window (:class:`~lfq_kit.models._nonfinite.NonFiniteGuard`: one host read), and
the EMA and LeCAM's EMAs are updated with the applied steps. Statistics over the batch that are not means over
samples are per micro-batch under accumulation: LFQ's batch entropy (and a VQ's EMA codebook update, which happens
in its forward) see ``B`` clips, not ``k·B``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor, nn

from ..distributed import all_reduce_sum
from ..losses import LeCAM, discriminator_loss, r1_penalty
from ..metrics.psnr import pooled_psnr
from ..metrics.reconstruction import ReconstructionMetrics
from ..quantizers import LFQ, Quantizer, QuantizerOutput
from ._checks import (
    LazyPixelCheck,
    check_index_layout,
    check_latent_channels,
    check_quantizer_dim,
    check_video,
    raise_on_bad_pixels,
)
from ._generator import TokenizerGenerator, generator_ema, generator_objective, to_parameter_dtype
from ._hparams import save_init_config
from ._manual_steps import ManualSteps, check_accumulate_grad_batches
from ._nonfinite import NonFiniteGuard
from ._step_seed import StepSeeded
from ._training import build_optimizer, compile_modules, update_ema, warmup_cosine

__all__ = ["TokenizerGenerator", "VideoTokenizer", "check_video"]


def _default_adam(params) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=1e-4, betas=(0.0, 0.99))


class VideoTokenizer(StepSeeded, ManualSteps, L.LightningModule):
    """MAGVIT-v2 tokenizer training: a generator (encoder, quantizer, decoder) and an optional discriminator.

    Generator loss per batch::

        reconstruction_weight · MSE(x̂, x) + perceptual_weight · P(x̂, x)
        + adversarial_weight · softplus(−D(x̂)) [after disc_start] + quantizer loss

    Discriminator loss (after ``disc_start``): non-saturating loss + ``lecam_weight`` · LeCAM
    + ``r1_weight · r1_every`` · R1 every ``r1_every`` generator steps (lazy regularization, StyleGAN2).

    Videos are float32, bf16 or fp16 ``(B, 3, T, H, W)`` in ``[−1, 1]``; batches are dicts with key
    ``"video"``. Every training batch's pixels are checked (NaN, ±inf, outside ``[−1, 1]``) without a sync
    per step: the first at once, the others lazily, read back every ``trainer.log_every_n_steps`` generator
    steps, at each training epoch's end and before each validation (the error names the generator step).

    Validation and test log ``val/*`` and ``test/*``: ``psnr_per_frame`` (the papers' convention),
    ``psnr_pooled``, ``ssim``, ``reconstruction`` and the codebook usage of the whole set
    (:class:`~lfq_kit.metrics.ReconstructionMetrics`), tokenizing through indices only.

    Under LightningCLI, ``VideoTokenizer.load_from_checkpoint(path)`` rebuilds the model from the saved
    config; a model built in Python is rebuilt by passing its modules and factories again:
    ``load_from_checkpoint(path, encoder=..., decoder=..., quantizer=..., discriminator=...)``.

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
        accumulate_grad_batches: batches per optimizer step (gradient accumulation, losses scaled by ``1/k``;
            see :mod:`~lfq_kit.models._manual_steps`); all step counts above count optimizer steps.
            ``Trainer(accumulate_grad_batches)`` does not apply to this manually optimized model and is refused.
        max_nonfinite_steps: stop with :class:`~lfq_kit.models._nonfinite.NonFiniteLossError` after this many
            skipped (NaN or infinite loss) steps in a row of either network (:mod:`~lfq_kit.models._nonfinite`).
        compile: ``torch.compile`` the encoder and decoder (live and EMA) in ``configure_model``; the quantizer,
            the losses and the discriminator stay eager.

    Training re-seeds torch's global generator at every batch (:class:`~lfq_kit.models._step_seed.StepSeeded`),
    so a resumed run draws the same random numbers as one never stopped.

    Raises:
        ValueError: an encoder without ``out_channels``; a decoder whose ``in_channels`` differs from it; a
            quantizer whose ``dim`` is not it; invalid steps, ``accumulate_grad_batches`` or ``max_nonfinite_steps``;
            ``Trainer(accumulate_grad_batches > 1)`` at fit; at run time, a video batch that is empty, not
            float32/bf16/fp16, not finite or outside ``[−1, 1]``, or whose shape the encoder rejects.
        FileNotFoundError, RuntimeError: at ``setup("fit")``, the perceptual loss's weights are missing.
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
        accumulate_grad_batches: int = 1,
        max_nonfinite_steps: int = 3,
        compile: bool = False,
    ) -> None:
        super().__init__()
        save_init_config(self)  # the config under LightningCLI; modules and factories are dropped
        self.automatic_optimization = False
        latent_channels = check_latent_channels(encoder, decoder)
        check_accumulate_grad_batches(accumulate_grad_batches)
        self.nonfinite_guard = NonFiniteGuard(max_nonfinite_steps, ("generator", "discriminator"))
        if r1_every < 1 or disc_start < 0 or warmup_steps < 0:
            got = f"{r1_every}, {disc_start}, {warmup_steps}"
            raise ValueError(f"r1_every must be >= 1, disc_start and warmup_steps >= 0; got {got}")
        built = quantizer(latent_channels)
        check_quantizer_dim(built, latent_channels)
        self.generator = TokenizerGenerator(encoder, built, decoder)
        self.discriminator = discriminator
        self.perceptual_loss = perceptual_loss
        self.lecam = LeCAM(lecam_decay)
        self.ema = generator_ema(self.generator, ema_decay)
        self.generator_optimizer = generator_optimizer or _default_adam
        self.discriminator_optimizer = discriminator_optimizer or _default_adam
        self.val_metrics = ReconstructionMetrics(built.codebook_size)
        self.test_metrics = ReconstructionMetrics(built.codebook_size)
        self._range_checked = False
        self._train_pixels = LazyPixelCheck()
        self._eval_pixels = LazyPixelCheck()
        self._compiled = False
        self._lecam_logits: list[tuple[Tensor, Tensor]] = []  # this window's (real, fake), for LeCAM's EMA update

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

        Indices only (``quantizer.quantize_indices``): no quantizer loss is computed and no quantizer
        state changes. The video is cast to the encoder's parameter dtype (a bf16 model takes fp32 pixels).
        One device sync (the pixel check).

        Raises:
            ValueError: an empty batch, a non-float or float64 video, NaN/±inf pixels or pixels outside
                ``[−1, 1]``, or a shape the encoder rejects (MAGVIT-v2's causal encoder: ``T = 1 + 4k``).
        """
        check_video(video)
        gen = self.inference_generator
        return gen.encode_indices(to_parameter_dtype(video, gen.encoder))

    @torch.no_grad()
    def decode(self, indices: Tensor) -> Tensor:
        """Token indices ``(B, T', H', W')`` → video ``(B, 3, T, H, W)`` in ``[−1, 1]`` (EMA weights).

        Decoders that also take images (``accepts_images``, e.g. ``Image2dDecoder``) take ``(B, H', W')`` too.

        Raises:
            ValueError: bool, float or complex indices; the wrong number of axes; an empty tensor; ids
                outside ``[0, codebook_size)``.
        """
        check_index_layout(indices, bool(getattr(self.decoder, "accepts_images", False)))
        self.quantizer.check_indices(indices)  # dtype and range, one sync (indices_to_codes repeats it: plugins)
        return self.inference_generator.decode_indices(indices).clamp(-1.0, 1.0)

    def forward(self, video: Tensor) -> tuple[Tensor, QuantizerOutput]:
        """Reconstruct with the live generator: ``(B, 3, T, H, W)`` → (reconstruction, quantizer output).

        Checks the shape and dtype only (no device sync); the quantizer refuses non-finite latents."""
        check_video(video, check_range=False)
        return self.generator(video)

    # -- training --------------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        """Lightning hook, after the strategy starts and before any data is read: for ``fit``, resolve the
        perceptual loss's weights (its ``load()``), so a missing file or unavailable pretrained weights fail
        now with their clear message instead of at the first step. Other stages never need them."""
        if stage == TrainerFn.FITTING and self.perceptual_loss is not None and self.hparams.perceptual_weight > 0:
            load = getattr(self.perceptual_loss, "load", None)
            if callable(load):
                load()

    def configure_model(self) -> None:
        """Lightning hook (under the strategy): ``torch.compile`` the encoder and decoder (live and EMA) when
        ``compile``."""
        gens = [self.generator] + ([self.ema.module] if self.ema is not None else [])
        compile_modules(self, [part for gen in gens for part in (gen.encoder, gen.decoder)])

    def configure_optimizers(self) -> Any:
        nets = [(self.generator, self.generator_optimizer)]
        if self.discriminator is not None:
            nets.append((self.discriminator, self.discriminator_optimizer))
        configs = []
        for net, factory in nets:
            opt = build_optimizer(factory, net)
            configs.append({"optimizer": opt, "lr_scheduler": warmup_cosine(opt, self, self.steps_per_batch)})
        return configs

    # -- training step ----------------------------------------------------------------------------

    def _video(self, batch: dict[str, Tensor]) -> Tensor:
        video = batch["video"]
        check_video(video, check_range=not self._range_checked)  # values read back once per run: no sync per step
        self._range_checked = True
        self._train_pixels.observe(video, self.generator_step)  # every batch, read back lazily
        return video

    def _raise_on_bad_pixels(self, check: LazyPixelCheck, what: str) -> None:
        raise_on_bad_pixels(check, what, self._trainer)  # every rank raises, none hangs

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.window_position == 0 and self.generator_step % max(1, self.trainer.log_every_n_steps) == 0:
            self._raise_on_bad_pixels(self._train_pixels, "training batch at generator step")
        super().on_train_batch_end(outputs, batch, batch_idx)

    def on_train_epoch_end(self) -> None:
        self._raise_on_bad_pixels(self._train_pixels, "training batch at generator step")
        super().on_train_epoch_end()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        k = self.hparams.get("accumulate_grad_batches", 1)
        position = self.window_position
        last = position == k - 1
        video = self._video(batch)
        step = self.generator_step
        gan_active = self.discriminator is not None and step >= self.hparams.disc_start
        self.quantizer.set_step(step)
        if position == 0:
            self._zero_grad(self.steps_per_batch)
            self._lecam_logits = []

        with self._no_sync(last):
            # generator
            recon, qout = self.generator(video)
            hp = self.hparams
            weights = (hp.reconstruction_weight, hp.perceptual_weight, hp.adversarial_weight)
            gan = self.discriminator if gan_active else None  # None: no adversarial term before disc_start
            g_loss, logs = generator_objective(recon, video, qout, self.perceptual_loss, gan, *weights)
            if g_loss.requires_grad:
                self.manual_backward(g_loss / k)
            self.nonfinite_guard.observe(0, g_loss)

            # discriminator (reads x̂ detached: the generator's coming step changes none of its inputs)
            if self.discriminator is not None:
                d_loss = torch.zeros((), device=video.device)
                if gan_active:
                    d_loss = self._discriminator_loss(video, recon.detach(), step, logs)
                    self.manual_backward(d_loss / k)
                self.nonfinite_guard.observe(1, d_loss)

        if last:
            ok = self.nonfinite_guard.decide(all_reduce_sum)  # one host read per window
            self._apply_step(0, ok[0])
            if self.ema is not None and ok[0]:
                self._update_ema()
            if self.discriminator is not None:
                if ok[1] and self._lecam_logits:  # LeCAM's EMAs see the whole window's logits, once per step
                    real, fake = zip(*self._lecam_logits)
                    self.lecam.update(torch.cat(real), torch.cat(fake))
                self._apply_step(1, ok[1])
            self._lecam_logits = []

        logs["train/loss"] = g_loss.detach()
        logs.update({f"train/{k_}": v for k_, v in qout.metrics.items()})
        self.log_dict(logs, prog_bar=False)
        self.log("train/psnr", pooled_psnr(recon.detach().float().clamp(-1, 1), video.float(), 2.0), prog_bar=True)
        self.log("train/nonfinite_skipped", float(self.nonfinite_guard.skipped))
        return g_loss.detach()

    def _discriminator_loss(self, real: Tensor, fake: Tensor, step: int, logs: dict[str, Tensor]) -> Tensor:
        """Non-saturating loss + LeCAM (against the EMAs from before this step; this batch's logits are kept
        for the EMA update at the optimizer step) + lazy R1 (every ``r1_every`` generator steps, scaled by it)."""
        hp = self.hparams
        lazy_r1 = hp.r1_weight > 0 and step % hp.r1_every == 0
        if lazy_r1:
            real = real.detach().requires_grad_(True)
        real_logits, fake_logits = self.discriminator(real), self.discriminator(fake)
        loss = discriminator_loss(real_logits, fake_logits)
        logs["train/discriminator"] = loss.detach()
        if hp.lecam_weight > 0:
            lecam = self.lecam(real_logits, fake_logits)
            self._lecam_logits.append((real_logits.detach(), fake_logits.detach()))
            loss = loss + hp.lecam_weight * lecam
            logs["train/lecam"] = lecam.detach()
        if lazy_r1:
            r1 = r1_penalty(real_logits, real)
            loss = loss + hp.r1_weight * hp.r1_every * r1
            logs["train/r1"] = r1.detach()
        logs["train/logits_real"] = real_logits.detach().float().mean()
        logs["train/logits_fake"] = fake_logits.detach().float().mean()
        return loss

    def _update_ema(self) -> None:
        update_ema(self.ema, self.generator)

    # -- evaluation ------------------------------------------------------------------------------

    def _evaluation_step(self, batch: dict[str, Tensor], batch_idx: int, stage: str) -> None:
        video = batch["video"]
        check_video(video, check_range=batch_idx == 0)  # the other batches lazily: no sync per batch
        self._eval_pixels.observe(video, batch_idx)
        gen = self.inference_generator
        indices = gen.encode_indices(video)  # no quantizer loss: the codes of indices equal forward's (contract)
        recon = gen.decode_indices(indices).clamp(-1.0, 1.0)
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        metrics.update(recon, video, indices)
        batch_size = video.shape[0]
        self.log(f"{stage}/psnr_per_frame", metrics.psnr_per_frame, prog_bar=True, batch_size=batch_size)
        self.log(f"{stage}/psnr_pooled", metrics.psnr_pooled, batch_size=batch_size)
        self.log(f"{stage}/ssim", metrics.ssim, batch_size=batch_size)
        self.log(f"{stage}/reconstruction", metrics.reconstruction, batch_size=batch_size)

    def _end_evaluation(self, stage: str) -> None:
        self._raise_on_bad_pixels(self._eval_pixels, f"{stage} batch")
        metrics = self.val_metrics if stage == "val" else self.test_metrics
        # computed over every rank's indices already: sync_dist averages equal values (and silences the warning)
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.codebook().items()}, sync_dist=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, batch_idx, "val")

    def on_validation_epoch_start(self) -> None:
        if self.trainer.state.fn == TrainerFn.FITTING:  # do not validate (or checkpoint) a model trained on bad pixels
            self._raise_on_bad_pixels(self._train_pixels, "training batch at generator step")
        self._eval_pixels.reset()

    def on_validation_epoch_end(self) -> None:
        self._end_evaluation("val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, batch_idx, "test")

    def on_test_epoch_start(self) -> None:
        self._eval_pixels.reset()

    def on_test_epoch_end(self) -> None:
        self._end_evaluation("test")

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        """Token indices of a batch (:meth:`encode`: indices only) plus its identifiers, for
        :class:`lfq_kit.callbacks.TokenWriter`."""
        out = {"indices": self.encode(batch["video"])}
        for key in ("label", "video_id", "clip_start"):
            if key in batch:
                out[key] = batch[key]
        if "clip_start" not in out and "frame_indices" in batch:  # video data modules: first source frame
            out["clip_start"] = batch["frame_indices"][:, 0]
        return out
