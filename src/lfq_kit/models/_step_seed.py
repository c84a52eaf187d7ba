"""Per-step seeding of torch's global random generator, so a resumed run draws the same random numbers.

A run resumed from a checkpoint restores weights, optimizers and data position, but torch's global generator
continues from wherever the new process left it (validation, data loading and model construction all draw
from it). Every random draw of a training step (dropout, drop-path, the masked LM's masks and class dropout,
MaskGIT schedules, GAN noise, R1's cadence is deterministic already) then differs after a resume. Re-seeding
at the start of each training batch from numbers the checkpoint restores makes them identical.

The step counter is Lightning's ``trainer.fit_loop.epoch_loop.total_batch_idx``: the batches started across
epochs, which a checkpoint restores exactly (also one saved in ``on_train_batch_end`` mid-epoch), and which,
unlike ``global_step``, differs between the micro-batches of one accumulated optimizer step.
"""

from __future__ import annotations

from typing import Any

import torch

from ..seeding import base_seed, step_seed

__all__ = ["StepSeeded"]


class StepSeeded:
    """LightningModule mixin: seed torch's global generator (CPU and every CUDA device) at each training batch
    start from :func:`~lfq_kit.seeding.step_seed` ``(base_seed(), total_batch_idx, global_rank)``
    (the seeds of the data order and samples come from the same module, under other domain tags).

    Put it before ``L.LightningModule`` in the bases. Costs one host-side seeding per batch (no device sync).
    """

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
        trainer = self.trainer
        torch.manual_seed(step_seed(base_seed(), trainer.fit_loop.epoch_loop.total_batch_idx, trainer.global_rank))
        return super().on_train_batch_start(batch, batch_idx)
