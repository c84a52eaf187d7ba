"""The order in which a rank reads a dataset, a pure function of ``(base seed, epoch, rank, world size)``, with
its position inside the epoch saved and restored for exact mid-epoch resume.

Training (``train=True``): the epoch's permutation of the dataset (``torch.randperm`` under
:func:`~lfq_kit.seeding.order_seed` ``(base, epoch)``), padded by repeating its head to a multiple of the
world size as ``torch.utils.data.DistributedSampler`` does (every rank must take the same number of steps), and
sharded round-robin: rank ``r`` of ``W`` takes positions ``r, r + W, …``. So the ranks' shards are disjoint up to
the ``< W`` padded repeats and together cover the epoch. Each item is a :class:`~lfq_kit.seeding.SampleKey`
``(index, sample_seed(base, epoch, index))``, which the datasets here turn into the sample's random choices.

Evaluation (``train=False``): in order, no padding, rank ``r`` takes ``r, r + W, …`` (plain ``int`` s), so over
all ranks every item is evaluated exactly once; shards differ in length by at most one.

It is a ``DistributedSampler`` subclass, so Lightning neither wraps nor replaces it (its data connector only
injects a sampler into loaders whose sampler is not a ``DistributedSampler``), and ``set_epoch``, which
Lightning calls at every epoch start, selects the permutation. ``state_dict`` / ``load_state_dict`` hold the
epoch and how many items this rank has yielded in it; torchdata's ``StatefulDataLoader`` saves them in its own
state (Lightning stores that in the checkpoint's fit loop, ``"combined_loader"``), and the next iteration after
``load_state_dict`` starts right after the last saved item (a state saved after an epoch's last item: at the next
epoch's start).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DistributedSampler

from ..seeding import DEFAULT_SEED, SampleKey, order_seed, sample_seed

__all__ = ["EpochSampler"]


class EpochSampler(DistributedSampler):
    """Seeded, sharded, resumable order of a map-style dataset (see the module docstring).

    Args:
        dataset: anything with ``len``.
        num_replicas: world size ``W`` (number of ranks reading the dataset).
        rank: this rank, ``0 <= rank < W``.
        train: shuffled, padded shards of :class:`~lfq_kit.seeding.SampleKey` s (else in order, unpadded,
            ``int`` s).
        seed: the base seed (:func:`~lfq_kit.seeding.base_seed`).

    Attributes:
        epoch: set by :meth:`set_epoch` (Lightning: the current epoch) or :meth:`load_state_dict`.
        yielded: items yielded in the current iteration (restored by :meth:`load_state_dict`).

    Raises:
        ValueError: ``num_replicas < 1`` or ``rank`` outside ``[0, num_replicas)``; a state dict without
            ``epoch`` and ``yielded`` or with a negative count.
    """

    def __init__(
        self, dataset: Sized, num_replicas: int = 1, rank: int = 0, train: bool = True, seed: int = DEFAULT_SEED
    ) -> None:
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(
                f"rank must be in [0, num_replicas) with num_replicas >= 1, got rank {rank} of {num_replicas}"
            )
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=train, seed=seed, drop_last=False)
        self.train = train
        self.yielded = 0
        self._resume_at: int | None = None

    def __len__(self) -> int:
        if self.train:
            return self.num_samples  # ⌈N / W⌉, padded
        return len(range(self.rank, len(self.dataset), self.num_replicas))

    def shard(self, epoch: int | None = None) -> list[int]:
        """This rank's dataset indices in ``epoch`` (default: the current one), in reading order."""
        epoch = self.epoch if epoch is None else epoch
        n = len(self.dataset)
        if not self.train:
            return list(range(self.rank, n, self.num_replicas))
        g = torch.Generator().manual_seed(order_seed(self.seed, epoch))
        order = torch.randperm(n, generator=g).tolist()
        pad = self.total_size - n  # < W; the permutation repeats when the dataset is smaller than that
        if pad:
            order += (order * (pad // n + 1))[:pad]
        return order[self.rank :: self.num_replicas]

    def set_epoch(self, epoch: int) -> None:
        """Select ``epoch``'s permutation; a position restored for another epoch is dropped (it belonged to that
        epoch's permutation)."""
        if epoch != self.epoch:
            self._resume_at = None
            self.yielded = 0
        super().set_epoch(epoch)

    def __iter__(self) -> Iterator[Any]:
        start, self._resume_at = self._resume_at or 0, None
        self.yielded = start
        return self._items(self.shard()[start:], self.epoch)

    def _items(self, indices: list[int], epoch: int) -> Iterator[Any]:
        for index in indices:
            self.yielded += 1  # before the yield: a state_dict taken after next() counts this item
            yield SampleKey(index, sample_seed(self.seed, epoch, index)) if self.train else index

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "yielded", "seed", "num_replicas"}``: the position inside the epoch (cheap: called per
        batch by ``StatefulDataLoader``)."""
        return {"epoch": self.epoch, "yielded": self.yielded, "seed": self.seed, "num_replicas": self.num_replicas}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume ``state``'s epoch right after its ``yielded`` items (at the next ``iter``); a state at the end
        of its epoch resumes at the start of the next one (Lightning, restoring a checkpoint taken after an epoch's
        last batch, goes on with the next epoch but keeps the loader iterator it created right after restoring).
        A different seed or world size than the saved one is allowed, with a warning: the rest of the epoch is then
        not the one the interrupted run would have read."""
        if "epoch" not in state or "yielded" not in state or state["yielded"] < 0:
            raise ValueError(f"EpochSampler state needs 'epoch' and 'yielded' >= 0, got {state!r}")
        for key in ("seed", "num_replicas"):
            if key in state and state[key] != getattr(self, key):
                warnings.warn(
                    f"resuming data order saved with {key}={state[key]} under {key}={getattr(self, key)}: "
                    "the rest of this epoch differs from the interrupted run's",
                    stacklevel=2,
                )
        epoch, yielded = int(state["epoch"]), int(state["yielded"])
        if yielded >= len(self):
            epoch, yielded = epoch + 1, 0
        self.epoch = epoch
        self.yielded = self._resume_at = yielded
