"""The tokenizer's training step under manual optimization: generator and discriminator losses, gradient
accumulation, the non-finite guard, the EMA and the lazy pixel checks (mixin of
:class:`~lfq_kit.models.VideoTokenizer`; MAGVIT-v2, arXiv 2310.05737, Sec. 3 and appendix).

One optimizer step of each network takes ``accumulate_grad_batches = k`` batches: each batch back-propagates its
generator loss and (after ``disc_start``) its discriminator loss scaled by ``1/k``; on the last batch of the window
the gradients are clipped, both optimizers and schedulers step, the EMA and LeCAM's EMAs are updated. Under DDP
the first ``k − 1`` backward passes run under ``no_sync`` (the strategy's ``block_backward_sync``), so gradients
are all-reduced once per step. Lightning's ``Trainer(accumulate_grad_batches)`` does not apply to manual
optimization and is refused.

The discriminator's loss is computed on the generator's output before the generator's optimizer step (it reads
``x̂`` detached and its own weights only, so the order changes no value); both losses are then checked for NaN and
infinity in one decision per batch window (:class:`~lfq_kit.models.nonfinite.NonFiniteGuard`: one host read).

Statistics over the batch that are not means over samples are per micro-batch under accumulation: LFQ's batch
entropy (and a VQ's EMA codebook update, which happens in its forward) see ``B`` clips, not ``k·B``.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from torch import Tensor

from ..losses import discriminator_loss, generator_loss, r1_penalty
from ..metrics.psnr import pooled_psnr
from .checks import LazyPixelCheck, check_video
from .nonfinite import NonFiniteState, discard_gradients, has_grad_scaler, strategy_sum

__all__ = ["TokenizerTraining", "check_accumulate_grad_batches"]


def check_accumulate_grad_batches(value: int) -> int:
    """Raise ``ValueError`` unless ``accumulate_grad_batches`` is an int ≥ 1; return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"accumulate_grad_batches must be an integer >= 1 (batches per optimizer step), got {value!r}")
    return value


class TokenizerTraining(NonFiniteState):
    """Training hooks of :class:`~lfq_kit.models.VideoTokenizer` (see the module docstring)."""

    _train_pixels: LazyPixelCheck
    _range_checked: bool
    _lecam_logits: list[tuple[Tensor, Tensor]]  # this window's (real, fake) logits, for LeCAM's EMA update

    # -- configuration ---------------------------------------------------------------------------

    def configure_callbacks(self) -> Any:
        # Lightning calls this before it validates the trainer's flags: refuse its accumulation with our message.
        trainer = self._trainer
        if trainer is not None and trainer.state.fn == TrainerFn.FITTING and trainer.accumulate_grad_batches != 1:
            raise ValueError(
                f"Trainer(accumulate_grad_batches={trainer.accumulate_grad_batches}) does not apply to "
                f"{type(self).__name__}, which optimizes manually: leave the trainer's at 1 and set the model's "
                f"`accumulate_grad_batches: {trainer.accumulate_grad_batches}` (model.init_args in YAML)"
            )
        return super().configure_callbacks()

    @property
    def window_position(self) -> int:
        """Index of the current batch inside its accumulation window, ``0 … k−1`` (from Lightning's total batch
        count, which checkpoints restore)."""
        return self.trainer.fit_loop.epoch_loop.total_batch_idx % self.hparams.get("accumulate_grad_batches", 1)

    def _no_sync(self, last: bool):
        block = getattr(self.trainer.strategy, "block_backward_sync", None)
        return nullcontext() if last or block is None else block()

    # -- pixel checks ----------------------------------------------------------------------------

    def _video(self, batch: dict[str, Tensor]) -> Tensor:
        video = batch["video"]
        check_video(video, check_range=not self._range_checked)  # values read back once per run: no sync per step
        self._range_checked = True
        self._train_pixels.observe(video, self.generator_step)  # every batch, read back lazily
        return video

    def _raise_on_bad_pixels(self, check: LazyPixelCheck, what: str) -> None:
        """Raise ``ValueError`` if ``check`` saw a bad batch here or (under DDP) on another rank."""
        message = check.error(what)
        if self._trainer is not None and self.trainer.world_size > 1:  # every rank raises, none hangs
            if self.trainer.strategy.reduce_boolean_decision(message is not None, all=False) and message is None:
                message = "another rank saw NaN, infinite or out-of-range pixels (its error names the batch)"
        if message is not None:
            raise ValueError(message)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.window_position == 0 and self.generator_step % max(1, self.trainer.log_every_n_steps) == 0:
            self._raise_on_bad_pixels(self._train_pixels, "training batch at generator step")

    def on_train_epoch_end(self) -> None:
        self._raise_on_bad_pixels(self._train_pixels, "training batch at generator step")

    # -- the step --------------------------------------------------------------------------------

    def _optimizer_and_scheduler(self, index: int) -> tuple[Any, Any]:
        optimizers, schedulers = self.optimizers(), self.lr_schedulers()
        opt = optimizers[index] if isinstance(optimizers, list) else optimizers
        sched = schedulers[index] if isinstance(schedulers, list) else schedulers
        return opt, sched

    def _apply_step(self, index: int, ok: bool) -> None:
        """Step optimizer ``index`` on the accumulated gradients, or (``ok`` False) drop them and step on none.

        ``opt.step()`` runs either way (also before ``disc_start``, without gradients), so ``global_step``
        advances uniformly; the scheduler steps only with applied steps."""
        opt, sched = self._optimizer_and_scheduler(index)
        if not ok:
            discard_gradients(opt, scaled=has_grad_scaler(self._trainer))
        elif self.hparams.gradient_clip_val and any(p.grad is not None for g in opt.param_groups for p in g["params"]):
            self.clip_gradients(opt, gradient_clip_val=self.hparams.gradient_clip_val, gradient_clip_algorithm="norm")
        opt.step()
        if ok:
            sched.step()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        k = self.hparams.get("accumulate_grad_batches", 1)
        position = self.window_position
        last = position == k - 1
        video = self._video(batch)
        step = self.generator_step
        gan_active = self.discriminator is not None and step >= self.hparams.disc_start
        self.quantizer.set_step(step)
        if position == 0:
            for index in range(self.steps_per_batch):
                self._optimizer_and_scheduler(index)[0].zero_grad(set_to_none=True)
            self._lecam_logits = []

        with self._no_sync(last):
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
            ok = self.nonfinite_guard.decide(strategy_sum(self._trainer))  # one host read per window
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

    @torch.no_grad()
    def _update_ema(self) -> None:
        self.ema.update_parameters(self.generator)
        # Buffers (a VQ codebook under EMA updates, the quantizer's step) follow the live model.
        for ema_buffer, buffer in zip(self.ema.module.buffers(), self.generator.buffers()):
            ema_buffer.copy_(buffer)
