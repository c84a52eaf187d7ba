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

import os
from typing import Any

import numpy as np
import torch

__all__ = ["DEFAULT_BASE_SEED", "StepSeeded", "base_seed", "step_seed"]

DEFAULT_BASE_SEED = 0


def base_seed() -> int:
    """The run's seed: ``PL_GLOBAL_SEED`` (set by ``seed_everything`` / ``seed_everything:`` in YAML), else 0.

    Raises:
        ValueError: ``PL_GLOBAL_SEED`` is set but not an integer.
    """
    value = os.environ.get("PL_GLOBAL_SEED")
    if value is None:
        return DEFAULT_BASE_SEED
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"PL_GLOBAL_SEED must be an integer seed, got {value!r}") from err


def step_seed(base: int, step: int, rank: int) -> int:
    """A 63-bit seed mixed from ``(base, step, rank)`` (numpy's ``SeedSequence``): distinct and uncorrelated
    for neighbouring steps and ranks, equal for equal inputs in any process."""
    words = np.random.SeedSequence([base & 0xFFFFFFFFFFFFFFFF, step, rank]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


class StepSeeded:
    """LightningModule mixin: seed torch's global generator (CPU and every CUDA device) at each training batch
    start from :func:`step_seed` ``(base_seed(), total_batch_idx, global_rank)``.

    Put it before ``L.LightningModule`` in the bases. Costs one host-side seeding per batch (no device sync).
    """

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> Any:
        trainer = self.trainer
        torch.manual_seed(step_seed(base_seed(), trainer.fit_loop.epoch_loop.total_batch_idx, trainer.global_rank))
        return super().on_train_batch_start(batch, batch_idx)
