"""The DataLoader side shared by the clip and image DataModules: one loader recipe for every split, and the
skip accounting of every batch in the main process."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from .clips import collate_clips
from .skips import SkipLog, skip_stage

__all__ = ["SplitLoaders"]


class SplitLoaders(L.LightningDataModule):
    """Training, validation and test DataLoaders over ``train_set`` and ``val_set`` (test reuses the validation
    set), batched with :func:`~lfq_kit.data.clips.collate_clips`, and :attr:`skip_log` fed by every batch
    under the trainer's running stage (:func:`~lfq_kit.data.skips.skip_stage`).

    Subclasses set ``batch_size``, ``num_workers``, ``pin_memory``, ``persistent_workers``, ``skip_log`` in
    ``__init__`` and ``train_set`` / ``val_set`` in ``setup``.

    Raises:
        RuntimeError: a DataLoader requested before ``setup`` built its dataset.
    """

    batch_size: int
    num_workers: int
    pin_memory: bool
    persistent_workers: bool
    skip_log: SkipLog
    train_set: Dataset | None
    val_set: Dataset | None

    def _loader(self, dataset: Dataset | None, train: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its dataloaders are requested")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            num_workers=self.num_workers,
            collate_fn=collate_clips,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, train=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Runs in the main process for every batch: the one place skips reported by workers are warned/counted,
        # under the running stage, so validation inside a training epoch is not counted as training.
        self.skip_log.update(batch, skip_stage(self.trainer))
        return batch
