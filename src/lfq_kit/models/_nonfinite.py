"""Skipping optimizer steps whose loss is NaN or infinite, and stopping a run that keeps producing them.

Weights must never become NaN silently (docs/fault_tolerance.md). A non-finite loss is detected on the device, the
optimizer step it would feed is skipped (its gradients are dropped, so no parameter, optimizer state, EMA or
learning-rate scheduler changes), the skip is counted (logged as ``train/nonfinite_skipped``, the total of skipped
optimizer steps) and, after ``max_nonfinite_steps`` skips in a row of one optimizer, the run stops with
:class:`NonFiniteLossError`.

Cost: one host read per optimizer step (the decision), like AMP's ``GradScaler``; under DDP/FSDP the flags are
summed over ranks first (one all-reduce of a tiny tensor), so every rank skips, or raises, at the same step and
none waits in a collective the others left.

What a skipped step leaves behind: Lightning's ``global_step`` still advances (the optimizer's ``step()`` is
called with no gradients, which every torch optimizer treats as "nothing to update"), so ``max_steps`` and
checkpoint cadences count batches consumed; the learning-rate scheduler does not step, so after ``n`` skips the
schedule lags ``global_step`` by ``n``. Under ``precision="16-mixed"`` the gradients are set to NaN instead, so
the ``GradScaler`` skips the step (and halves its scale, as for any overflow).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from ..distributed import all_reduce_sum

__all__ = [
    "NonFiniteGuard",
    "NonFiniteLossError",
    "SkipNonFiniteSteps",
    "check_max_nonfinite_steps",
    "discard_gradients",
]


class NonFiniteLossError(RuntimeError):
    """Raised (on every rank at once) after ``max_nonfinite_steps`` non-finite losses in a row."""


def check_max_nonfinite_steps(value: int) -> int:
    """Raise ``ValueError`` unless ``max_nonfinite_steps`` is an int ≥ 1; return it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_nonfinite_steps must be an integer >= 1 (skips in a row before stopping), got {value!r}")
    return value


def discard_gradients(optimizer: torch.optim.Optimizer, scaled: bool = False) -> None:
    """Drop the gradients of ``optimizer``'s parameters so its next ``step()`` changes nothing.

    ``scaled=False``: set them to None (torch optimizers skip parameters without a gradient: no update, no state
    change). ``scaled=True`` (a ``GradScaler`` will step): fill them with NaN, which the scaler detects and skips.
    """
    for group in optimizer.param_groups:
        for p in group["params"]:
            if scaled and p.grad is not None:
                p.grad.fill_(float("nan"))
            elif not scaled:
                p.grad = None


class NonFiniteGuard:
    """Device-side record of non-finite losses per optimizer ("slot"), decided once per optimizer step.

    :meth:`observe` folds a loss in without a host read; :meth:`decide` sums the flags over ranks, reads them
    back once, updates the counters and returns, per slot, whether the step may be applied.

    Args:
        max_in_a_row: skips in a row of one slot after which :meth:`decide` raises.
        names: one name per slot, for the error message (``("generator", "discriminator")``).
    """

    def __init__(self, max_in_a_row: int, names: Sequence[str] = ("model",)) -> None:
        self.max_in_a_row = check_max_nonfinite_steps(max_in_a_row)
        self.names = tuple(names)
        self.skipped = 0  # optimizer steps skipped in the whole run (all slots)
        self.in_a_row = [0] * len(self.names)
        self._bad: Tensor | None = None

    @torch.no_grad()
    def observe(self, slot: int, loss: Tensor) -> None:
        """Record whether ``loss`` (any shape) has a NaN or ±inf value: no host read."""
        bad = ~torch.isfinite(loss.detach()).all()
        if self._bad is None or self._bad.device != bad.device:
            self._bad = torch.zeros(len(self.names), dtype=torch.int32, device=bad.device)
        self._bad[slot] |= bad.to(torch.int32)

    def decide(self, reduce: Callable[[Tensor], Tensor] | None = None) -> list[bool]:
        """Per slot, True when every loss observed since the last call (on every rank) was finite.

        Args:
            reduce: sums a tensor over ranks (:func:`lfq_kit.distributed.all_reduce_sum`); None on a single
                process.

        Raises:
            NonFiniteLossError: a slot reached ``max_in_a_row`` skips in a row (the message names it).
        """
        if self._bad is None:
            return [True] * len(self.names)
        bad = self._bad if reduce is None else reduce(self._bad.clone())
        flags = [v > 0 for v in bad.tolist()]  # the one host read per optimizer step
        self._bad.zero_()
        for slot, is_bad in enumerate(flags):
            self.in_a_row[slot] = self.in_a_row[slot] + 1 if is_bad else 0
            self.skipped += int(is_bad)
        for slot, count in enumerate(self.in_a_row):
            if count >= self.max_in_a_row:
                raise NonFiniteLossError(
                    f"the {self.names[slot]} loss was NaN or infinite in {count} optimizer steps in a row "
                    f"(max_nonfinite_steps={self.max_in_a_row}); those steps were skipped, the weights are the last "
                    f"finite ones ({self.skipped} steps skipped in this run). Check the data, lower the learning rate "
                    "or warm it up longer, or train in bf16-mixed / fp32 instead of fp16"
                )
        return [not b for b in flags]

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "in_a_row": list(self.in_a_row)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.skipped = int(state.get("skipped", 0))
        in_a_row = list(state.get("in_a_row", []))
        self.in_a_row = in_a_row if len(in_a_row) == len(self.names) else [0] * len(self.names)


def has_grad_scaler(trainer: Any) -> bool:
    """Whether ``trainer``'s precision plugin steps through a ``GradScaler`` (``16-mixed``)."""
    return getattr(getattr(trainer, "precision_plugin", None), "scaler", None) is not None


class NonFiniteState:
    """LightningModule mixin: saves ``self.nonfinite_guard``'s counters in checkpoints (key ``"nonfinite"``)."""

    nonfinite_guard: NonFiniteGuard

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["nonfinite"] = self.nonfinite_guard.state_dict()
        super().on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "nonfinite" in checkpoint:
            self.nonfinite_guard.load_state_dict(checkpoint["nonfinite"])
        super().on_load_checkpoint(checkpoint)


class SkipNonFiniteSteps(NonFiniteState):
    """LightningModule mixin for automatic optimization: skip the optimizer step of a non-finite loss.

    The module sets ``self.nonfinite_guard = NonFiniteGuard(max_nonfinite_steps)`` in ``__init__``. Every loss
    Lightning back-propagates (each micro-batch under ``accumulate_grad_batches``) is observed in
    ``on_before_backward``; the decision is taken inside the optimizer closure, after the last backward of the
    step and before the optimizer reads the gradients; a skipped step's scheduler step is skipped too
    (``lr_scheduler_step``). Logs ``train/nonfinite_skipped`` every batch (a host-side count: no sync).
    """

    _nonfinite_last_skipped = False

    def on_before_backward(self, loss: Tensor) -> None:
        self.nonfinite_guard.observe(0, loss)
        super().on_before_backward(loss)

    def optimizer_step(
        self, epoch: int, batch_idx: int, optimizer: Any, optimizer_closure: Callable | None = None
    ) -> None:
        def guarded_closure() -> Any:
            out = optimizer_closure() if optimizer_closure is not None else None
            (ok,) = self.nonfinite_guard.decide(all_reduce_sum)
            self._nonfinite_last_skipped = not ok
            if not ok:
                discard_gradients(optimizer, scaled=has_grad_scaler(self._trainer))
            return out

        optimizer.step(closure=guarded_closure)

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        if self._nonfinite_last_skipped:
            return  # the schedule counts applied steps only
        super().lr_scheduler_step(scheduler, metric)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.log("train/nonfinite_skipped", float(self.nonfinite_guard.skipped))
        super().on_train_batch_end(outputs, batch, batch_idx)
