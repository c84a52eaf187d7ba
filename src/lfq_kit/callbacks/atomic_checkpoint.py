"""``ModelCheckpoint`` for runs that may be killed: every checkpoint file and ``last.ckpt`` is complete or absent.

Lightning's ``ModelCheckpoint`` (2.6) leaves two windows in which ``last.ckpt`` is missing or dangling when
``save_last="link"``:

- ``_link_checkpoint`` removes ``last.ckpt``, then creates the new link: a kill in between leaves no
  ``last.ckpt``, and ``--ckpt_path last`` then warns "there is no last checkpoint available" and trains from
  scratch;
- with ``save_top_k=1`` (or a top-k eviction) the file ``last.ckpt`` points at is deleted before the link moves to
  the new one: a kill in between leaves ``last.ckpt`` dangling, with the same result.

:class:`AtomicModelCheckpoint` makes the new link under a temporary name and ``os.replace``'s it over
``last.ckpt`` (atomic on POSIX), and defers deleting the file ``last.ckpt`` points at until the link has moved.
Checkpoint files themselves are written by :class:`lfq_kit.plugins.AtomicCheckpointIO` (temporary file, fsync,
rename), which this callback installs when the Trainer has Lightning's default writer.

It also takes the checkpoints of an epoch's end after that epoch's validation, the one point of an epoch boundary
from which Lightning (2.6) resumes exactly: a checkpoint taken on the epoch's last training batch, before
validation, resumes into an empty rest of the epoch (the data loader's saved position is the epoch's end, while the
loop, which increments the epoch itself, asks it for the next epoch's batches) and so reads the epoch after next;
one taken in ``on_train_epoch_end`` counts the epoch as processed twice on resume, and the samplers' epoch
(``set_epoch(processed)``) is one ahead. Otherwise it is ``ModelCheckpoint``: same arguments, file names, triggers
and state. See docs/fault_tolerance.md.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import Tensor

from ..io import fsync_folder, partial_path, remove_partial_files
from ..plugins.atomic_checkpoint_io import AtomicCheckpointIO

__all__ = ["AtomicModelCheckpoint"]


def _resolved(path: str) -> str:
    """``path`` with its folder's symlinks resolved but not the file itself (a link stays the link)."""
    return os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(path))), os.path.basename(path))


class AtomicModelCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint`` (same arguments) whose files and ``last.ckpt`` survive a kill at any point.

    - Files: written to ``dir/.name.partial``, fsync'ed, renamed (:class:`~lfq_kit.plugins.AtomicCheckpointIO`,
      installed on the strategy in :meth:`setup` if it has Lightning's default ``TorchCheckpointIO``; a
      ``CheckpointIO`` given in ``trainer.plugins`` is kept as it is). Partial files a killed run left in
      ``dirpath`` are deleted when ``fit`` starts.
    - ``save_last="link"``: the link is replaced atomically, and the file it points at is deleted only after it
      points at the new one, so ``last.ckpt`` always resolves to a complete checkpoint once one was saved.
    - ``save_last=True``: ``last.ckpt`` is a full copy, written atomically like any file.
    - A save due on the last training batch of an epoch that is validated (``every_n_train_steps``), and the
      epoch-end saves (``every_n_epochs``), are taken at the end of that validation (unless
      ``save_on_train_epoch_end`` is given): the checkpoint then resumes exactly (module docstring). Epochs without
      validation keep Lightning's points.

    Args:
        save_on_train_end: also save (a regular checkpoint and ``last``) when training ends on a step not yet
            saved, as when ``max_time`` stops a run between two ``every_n_train_steps`` saves; for callbacks
            without a ``monitor`` (ignored with one: its score would be stale).
        **kwargs: Lightning's ``ModelCheckpoint`` arguments (``dirpath``, ``filename``, ``monitor``, ``save_last``,
            ``every_n_train_steps``, ...).
    """

    def __init__(self, save_on_train_end: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.save_on_train_end = save_on_train_end
        self._deferred_removals: list[str] = []
        self._on_last_batch = False  # inside on_train_batch_end of a validated epoch's last batch
        self._deferred_to_validation_end = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()
        if stage == "fit" and trainer.is_global_zero and self.dirpath and _is_local_file_protocol(self.dirpath):
            remove_partial_files(Path(self.dirpath))

    def _validates_this_epoch(self, trainer: pl.Trainer) -> bool:
        """Whether the current epoch ends with a validation (Lightning's own test, as in ``ModelCheckpoint``)."""
        if not trainer.enable_validation:
            return False
        batches = trainer.num_val_batches
        batches = sum(batches) if isinstance(batches, list) else batches
        every = trainer.check_val_every_n_epoch
        return bool(batches) and every is not None and (trainer.current_epoch + 1) % every == 0

    def _should_save_on_train_epoch_end(self, trainer: pl.Trainer) -> bool:
        if self._save_on_train_epoch_end is not None:
            return self._save_on_train_epoch_end
        return not self._validates_this_epoch(trainer)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any, **kwargs: Any) -> None:
        self._on_last_batch = (
            self._save_on_train_epoch_end is None
            and trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
            and self._validates_this_epoch(trainer)
        )
        try:
            super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        finally:
            self._on_last_batch = False

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        if self._on_last_batch:
            self._deferred_to_validation_end = True
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_deferred(self, trainer: pl.Trainer) -> None:
        if self._deferred_to_validation_end:
            self._deferred_to_validation_end = False
            if not self._should_skip_saving_checkpoint(trainer):
                candidates = self._monitor_candidates(trainer)
                self._save_topk_checkpoint(trainer, candidates)
                self._save_last_checkpoint(trainer, candidates)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_deferred(trainer)
        super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_deferred(trainer)  # the validation did not run after all (the run stopped first)
        super().on_train_epoch_end(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_deferred(trainer)
        super().on_train_end(trainer, pl_module)
        if self.save_on_train_end and self.monitor is None and not self._should_skip_saving_checkpoint(trainer):
            candidates = self._monitor_candidates(trainer)
            self._save_topk_checkpoint(trainer, candidates)
            self._save_last_checkpoint(trainer, candidates)

    @staticmethod
    def _link_checkpoint(trainer: pl.Trainer, filepath: str, linkpath: str) -> None:
        if trainer.is_global_zero and os.path.abspath(filepath) != os.path.abspath(linkpath):
            link = Path(linkpath)
            tmp = partial_path(link)
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            try:
                tmp.symlink_to(os.path.relpath(filepath, link.parent))
            except OSError:  # no symlinks (Windows without the privilege): an atomic copy instead
                shutil.copyfile(filepath, tmp)
            if link.is_dir() and not link.is_symlink():  # a copied sharded checkpoint: not replaceable atomically
                shutil.rmtree(link)
            os.replace(tmp, link)
            fsync_folder(link.parent)
        trainer.strategy.barrier()

    def _points_at(self, filepath: str) -> bool:
        """Whether ``last.ckpt`` (a link) currently resolves to ``filepath``."""
        last = self.last_model_path
        return bool(last) and os.path.islink(last) and os.path.realpath(last) == _resolved(filepath)

    def _remove_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        if self.save_last == "link" and self._points_at(filepath):
            self._deferred_removals.append(filepath)  # removed once last.ckpt points elsewhere
            return
        super()._remove_checkpoint(trainer, filepath)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, Tensor]) -> None:
        if self._on_last_batch:
            return  # with the deferred save
        super()._save_last_checkpoint(trainer, monitor_candidates)
        pending, self._deferred_removals = self._deferred_removals, []
        for path in pending:
            self._remove_checkpoint(trainer, path)
