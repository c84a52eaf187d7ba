"""The DataLoader side shared by every DataModule here: one resumable loader recipe for every split, and the
skip accounting of every batch in the main process.

Every loader is a ``torchdata.stateful_dataloader.StatefulDataLoader`` over an
:class:`~lfq_kit.data.epoch_sampler.EpochSampler` for this rank (rank and world size from the trainer's strategy
when the loader is built, else ``torch.distributed``, else one process). Training loaders yield seeded
:class:`~lfq_kit.seeding.SampleKey` s, so a batch's content depends only on ``(base seed, epoch,
indices)``; Lightning saves the loader's ``state_dict`` in the checkpoint and a run resumed with ``--ckpt_path``
continues with exactly the batches the uninterrupted run would have read (see :mod:`lfq_kit.seeding`).
Evaluation loaders shard without padding: over all ranks each item is read once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from ..seeding import base_seed
from .clips import collate_clips
from .epoch_sampler import EpochSampler
from .skips import SkipLog, skip_stage

__all__ = ["SplitLoaders", "build_loader", "fit_epoch", "rank_and_world"]


def rank_and_world(trainer: L.Trainer | None = None) -> tuple[int, int]:
    """``(rank, world size)`` of the process reading data: the trainer strategy's distributed sampler arguments
    (what Lightning itself would shard by), else the initialized default process group, else ``(0, 1)``."""
    kwargs = getattr(trainer, "distributed_sampler_kwargs", None) if trainer is not None else None
    if kwargs:
        return int(kwargs["rank"]), int(kwargs["num_replicas"])
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def fit_epoch(trainer: L.Trainer | None) -> int:
    """The epoch Lightning's fit loop passes to ``set_epoch`` next (0 outside a fit, or before one starts): on a
    resumed run, the restored epoch."""
    progress = getattr(getattr(trainer, "fit_loop", None), "epoch_progress", None)
    return int(progress.current.processed) if progress is not None else 0


def build_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    seed: int | None = None,
    trainer: L.Trainer | None = None,
    num_workers: int = 0,
    collate_fn: Callable[[Sequence[Any]], Any] | None = None,
    pin_memory: bool = False,
    persistent_workers: bool = False,
) -> StatefulDataLoader:
    """A ``StatefulDataLoader`` over ``dataset`` in this rank's :class:`~lfq_kit.data.epoch_sampler.EpochSampler`
    order (see the module docstring).

    Args:
        dataset: a map-style dataset; with ``train`` its ``__getitem__`` must accept
            :class:`~lfq_kit.seeding.SampleKey` s.
        batch_size: items per batch (per rank); the last batch may be smaller.
        train: shuffled, seeded, padded shards (else in order, unpadded).
        seed: base seed (None: :func:`~lfq_kit.seeding.base_seed`, read now).
        trainer: where the rank and world size come from (:func:`rank_and_world`).
        num_workers, collate_fn: DataLoader settings.
        pin_memory: pin batches (only when CUDA is available).
        persistent_workers: keep workers between epochs (only with ``num_workers > 0``).
    """
    rank, world = rank_and_world(trainer)
    sampler = EpochSampler(dataset, num_replicas=world, rank=rank, train=train, seed=base_seed(seed))
    # Lightning creates the first iterator (which, with workers, draws indices at once) before its first set_epoch,
    # and a run resumed after an epoch's end keeps that iterator: start at the epoch it will set.
    sampler.set_epoch(fit_epoch(trainer))
    with warnings.catch_warnings():  # torchdata 0.11 calls torch.set_vital, deprecated in recent torch: not ours
        warnings.filterwarnings("ignore", message="'set_vital' is deprecated", category=UserWarning)
        return StatefulDataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=num_workers,
            collate_fn=collate_fn,
            pin_memory=pin_memory and torch.cuda.is_available(),
            persistent_workers=persistent_workers and num_workers > 0,
        )


class SplitLoaders(L.LightningDataModule):
    """Training, validation and test loaders (:func:`build_loader`) over ``train_set`` and ``val_set`` (test
    reuses the validation set), batched with :attr:`collate_fn` (:func:`~lfq_kit.data.clips.collate_clips`), and
    :attr:`skip_log` fed by every batch under the trainer's running stage (:func:`~lfq_kit.data.skips.skip_stage`).

    Subclasses set ``batch_size``, ``num_workers``, ``pin_memory``, ``persistent_workers``, ``skip_log`` and
    ``seed`` (None: :func:`~lfq_kit.seeding.base_seed`'s fallbacks) in ``__init__`` and ``train_set`` /
    ``val_set`` in ``setup``.

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
    seed: int | None = None
    #: Batches samples of the datasets (overridden by the multi-view camera-motion data).
    collate_fn: Callable[[Sequence[Any]], Any] = staticmethod(collate_clips)

    def _loader(self, dataset: Dataset | None, train: bool) -> StatefulDataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() must run before its dataloaders are requested")
        return build_loader(
            dataset,
            self.batch_size,
            train,
            seed=self.seed,
            trainer=self.trainer,
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def train_dataloader(self) -> StatefulDataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> StatefulDataLoader:
        return self._loader(self.val_set, train=False)

    def test_dataloader(self) -> StatefulDataLoader:
        return self._loader(self.val_set, train=False)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Runs in the main process for every batch: the one place skips reported by workers are warned/counted,
        # under the running stage, so validation inside a training epoch is not counted as training.
        self.skip_log.update(batch, skip_stage(self.trainer))
        return batch
