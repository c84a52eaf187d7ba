"""Accounting for skipped videos (invariant 14: a bad file never stops training; it is skipped, counted and
named once in a warning).

Skips happen where clips are decoded, which with ``num_workers > 0`` is a DataLoader worker process: a
worker's warnings and counters would be per process (and lost when non-persistent workers exit). So workers
only *report*: every batch carries ``batch["skipped"]`` (paths skipped while producing it) and
``batch["skip_reasons"]``. The main process feeds batches to a :class:`SkipLog`, which warns once per file
and counts; :class:`~lfq_kit.data.datamodule.ClipDataModule` does that in ``on_after_batch_transfer``, and
:class:`SkippedFilesReport` prints and logs a summary at the end of each training epoch. Outside a Trainer,
call ``SkipLog.update(batch)`` yourself.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from typing import Any, Mapping

import lightning as L
from lightning.pytorch.callbacks import Callback

__all__ = ["MissingVideosWarning", "SkipLog", "SkippedFilesReport", "SkippedVideoWarning"]

log = logging.getLogger(__name__)


class SkippedVideoWarning(UserWarning):
    """A video was left out or skipped because it cannot be read."""


class MissingVideosWarning(SkippedVideoWarning):
    """Listed videos do not exist and were left out (datasets where that is normal, e.g. Kinetics)."""


class SkipLog:
    """Main-process ledger of skipped videos: warns once per file, counts clips skipped per file.

    Attributes:
        reasons: path → the decoder's reason, for every file seen failing.
        excluded: path → reason for files left out when the datasets were built (known from the manifest).
        total: clips skipped since construction.
    """

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}
        self.excluded: dict[str, str] = {}
        self.total = 0
        self._epoch: Counter[str] = Counter()

    def record(self, path: str, reason: str) -> None:
        """Count one skipped clip of ``path``; the first time a file fails, warn with its name and reason."""
        if path not in self.reasons and path not in self.excluded:
            warnings.warn(f"skipped unreadable file {path}: {reason}", SkippedVideoWarning, stacklevel=2)
        self.reasons.setdefault(path, reason)
        self._epoch[path] += 1
        self.total += 1

    def exclude(self, bad: Mapping[str, str]) -> None:
        """Remember files left out up front (the dataset already warned about them)."""
        self.excluded.update(bad)

    def update(self, batch: Any) -> int:
        """Record the skips a collated batch reports; returns how many. Batches without the keys are ignored."""
        if not isinstance(batch, Mapping) or not batch.get("skipped"):
            return 0
        for path, reason in zip(batch["skipped"], batch["skip_reasons"]):
            self.record(path, reason)
        return len(batch["skipped"])

    def pop_epoch(self) -> Counter[str]:
        """Clips skipped per file since the previous call, and reset."""
        counts, self._epoch = self._epoch, Counter()
        return counts


def _summary(epoch: int, counts: Counter[str], reasons: Mapping[str, str], excluded: int) -> str:
    lines = [f"epoch {epoch}: skipped {sum(counts.values())} clip(s) from {len(counts)} unreadable file(s)"]
    lines += [f"  {path} (x{n}): {reasons.get(path, '')}" for path, n in counts.most_common()]
    if excluded:
        lines.append(f"  ({excluded} unreadable file(s) were left out when the datasets were built)")
    return "\n".join(lines)


class SkippedFilesReport(Callback):
    """At the end of each training epoch, log how many clips were skipped (metric ``data/skipped_clips``,
    summed over ranks) and, on each rank that skipped any, a summary naming the files.

    Reads the ``skip_log`` attribute (a :class:`SkipLog`) of the trainer's datamodule; does nothing with
    other datamodules. Each epoch's per-file counts are also kept in :attr:`history`.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, int]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        skip_log = getattr(trainer.datamodule, "skip_log", None)
        if not isinstance(skip_log, SkipLog):
            return
        counts = skip_log.pop_epoch()
        self.history.append(dict(counts))
        pl_module.log("data/skipped_clips", float(sum(counts.values())), on_epoch=True, sync_dist=True,
                      reduce_fx="sum")
        if counts:
            log.warning(_summary(trainer.current_epoch, counts, skip_log.reasons, len(skip_log.excluded)))
