"""Gradient accumulation and guarded optimizer steps under manual optimization (the tokenizer's two networks).

One optimizer step of each network takes ``accumulate_grad_batches = k`` batches: each batch back-propagates its
losses scaled by ``1/k``; on the last batch of the window the gradients are clipped and the optimizers and their
schedulers step. Under DDP the first ``k − 1`` backward passes run under ``no_sync`` (the strategy's
``block_backward_sync``), so gradients are all-reduced once per step. Lightning's
``Trainer(accumulate_grad_batches)`` does not apply to manual optimization and is refused. A step whose loss was
NaN or infinite is skipped (:mod:`lfq_kit.models._nonfinite`).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from lightning.pytorch.trainer.states import TrainerFn

from ._nonfinite import NonFiniteState, discard_gradients, has_grad_scaler

__all__ = ["ManualSteps", "check_accumulate_grad_batches"]


def check_accumulate_grad_batches(value: int) -> int:
    """Raise ``ValueError`` unless ``accumulate_grad_batches`` is an int ≥ 1; return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"accumulate_grad_batches must be an integer >= 1 (batches per optimizer step), got {value!r}")
    return value


class ManualSteps(NonFiniteState):
    """LightningModule mixin for manual optimization with accumulation (see the module docstring). The module has
    ``hparams.accumulate_grad_batches`` and ``hparams.gradient_clip_val`` and a ``nonfinite_guard``; every hook
    calls ``super()``."""

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

    def _optimizer_and_scheduler(self, index: int) -> tuple[Any, Any]:
        optimizers, schedulers = self.optimizers(), self.lr_schedulers()
        opt = optimizers[index] if isinstance(optimizers, list) else optimizers
        sched = schedulers[index] if isinstance(schedulers, list) else schedulers
        return opt, sched

    def _zero_grad(self, optimizers: int) -> None:
        """At a window's first batch: drop the gradients of the first ``optimizers`` optimizers."""
        for index in range(optimizers):
            self._optimizer_and_scheduler(index)[0].zero_grad(set_to_none=True)

    def _apply_step(self, index: int, ok: bool) -> None:
        """Step optimizer ``index`` on the accumulated gradients, or (``ok`` False) drop them and step on none.

        ``opt.step()`` runs either way (also without gradients, e.g. before a GAN starts), so ``global_step``
        advances uniformly; the scheduler steps only with applied steps."""
        opt, sched = self._optimizer_and_scheduler(index)
        if not ok:
            discard_gradients(opt, scaled=has_grad_scaler(self._trainer))
        elif self.hparams.gradient_clip_val and any(p.grad is not None for g in opt.param_groups for p in g["params"]):
            self.clip_gradients(opt, gradient_clip_val=self.hparams.gradient_clip_val, gradient_clip_algorithm="norm")
        opt.step()
        if ok:
            sched.step()
