"""Accounting for skipped videos (docs/data.md: a bad file never stops training; it is skipped, counted and
named once in a warning).

Skips happen where clips are decoded, which with ``num_workers > 0`` is a DataLoader worker process: a
worker's warnings and counters would be per process (and lost when non-persistent workers exit). So workers
only *report*: every batch carries ``batch["skipped"]`` (paths skipped while producing it) and
``batch["skip_reasons"]``. The main process feeds batches to a :class:`SkipLog`, which warns once per file
and counts, separately per stage (training, validation, test, predict), so a validation run inside a
training epoch does not add to that epoch's training count; :class:`~lfq_kit.data.loaders.SplitLoaders`
(every DataModule here) does that in ``on_after_batch_transfer``, and :class:`SkippedFilesReport` prints and
logs a summary at the end of each training, validation and test epoch. Outside a Trainer, call
``SkipLog.update(batch)`` yourself (it counts as training unless given a ``stage``).

Under several ranks each rank's ledger holds its own batches; at each epoch end the report gathers them
(:func:`gather_skips`: counts summed, names and reasons unioned, with ``torch.distributed.all_gather_object``)
and rank 0 prints the summary of the whole epoch.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

import lightning as L
import torch.distributed as dist
from lightning.pytorch.callbacks import Callback

from ..distributed import is_distributed

__all__ = [
    "GatheredSkips",
    "MissingVideosWarning",
    "SkipLog",
    "SkipStage",
    "SkippedFilesReport",
    "SkippedVideoWarning",
    "gather_skips",
    "skip_stage",
]

#: The stages skips are counted under: Lightning's running stages, the sanity check counted as validation.
SkipStage = Literal["train", "validate", "test", "predict"]
_STAGES = ("train", "validate", "test", "predict")

log = logging.getLogger(__name__)


class SkippedVideoWarning(UserWarning):
    """A video was left out or skipped because it cannot be read."""


class MissingVideosWarning(SkippedVideoWarning):
    """Listed videos do not exist and were left out (datasets where that is normal, e.g. Kinetics)."""


def skip_stage(trainer: L.Trainer | None) -> SkipStage:
    """The stage a batch is counted under: the trainer's running stage (``"sanity_check"`` counts as
    ``"validate"``), or ``"train"`` outside a Trainer."""
    stage = getattr(getattr(trainer, "state", None), "stage", None)
    if stage is None:
        return "train"
    return "validate" if stage.value == "sanity_check" else stage.value


def _check_stage(stage: str) -> None:
    if stage not in _STAGES:
        raise ValueError(f"skip stage must be one of {', '.join(_STAGES)}, got {stage!r}")


class SkipLog:
    """Main-process ledger of skipped videos: warns once per file, counts clips skipped per file and stage.

    Attributes:
        reasons: path → the decoder's reason, for every file seen failing (any stage).
        excluded: path → reason for files left out when the datasets were built (known from the manifest).
        total: clips skipped since construction, all stages together.
        totals: stage → clips skipped in that stage since construction.
    """

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}
        self.excluded: dict[str, str] = {}
        self.total = 0
        self.totals: Counter[str] = Counter()
        self._epoch: dict[str, Counter[str]] = {stage: Counter() for stage in _STAGES}

    def record(self, path: str, reason: str, stage: SkipStage = "train") -> None:
        """Count one skipped clip of ``path`` in ``stage``; the first time a file fails, warn with its name
        and reason.

        Raises:
            ValueError: ``stage`` is not one of ``"train"``, ``"validate"``, ``"test"``, ``"predict"``.
        """
        _check_stage(stage)
        if path not in self.reasons and path not in self.excluded:
            warnings.warn(f"skipped unreadable file {path}: {reason}", SkippedVideoWarning, stacklevel=2)
        self.reasons.setdefault(path, reason)
        self._epoch[stage][path] += 1
        self.totals[stage] += 1
        self.total += 1

    def exclude(self, bad: Mapping[str, str]) -> None:
        """Remember files left out up front (the dataset already warned about them)."""
        self.excluded.update(bad)

    def update(self, batch: Any, stage: SkipStage = "train") -> int:
        """Record the skips a collated batch reports under ``stage``; returns how many. Batches without
        the keys are ignored."""
        _check_stage(stage)
        if not isinstance(batch, Mapping) or not batch.get("skipped"):
            return 0
        for path, reason in zip(batch["skipped"], batch["skip_reasons"]):
            self.record(path, reason, stage)
        return len(batch["skipped"])

    def pop_epoch(self, stage: SkipStage = "train") -> Counter[str]:
        """Clips of ``stage`` skipped per file since the previous call for that stage, and reset them."""
        _check_stage(stage)
        counts, self._epoch[stage] = self._epoch[stage], Counter()
        return counts


class GatheredSkips(NamedTuple):
    """One stage's epoch of skips over all ranks.

    Attributes:
        counts: path → clips skipped, summed over ranks.
        reasons: path → the decoder's reason, for every path in ``counts`` (any rank's).
        excluded: paths left out when the datasets were built, unioned over ranks.
    """

    counts: Counter[str]
    reasons: dict[str, str]
    excluded: frozenset[str]


def gather_skips(counts: Mapping[str, int], reasons: Mapping[str, str], excluded: Iterable[str]) -> GatheredSkips:
    """Merge one rank's epoch of skips (``counts`` as from :meth:`SkipLog.pop_epoch`, ``reasons`` and
    ``excluded`` as in :class:`SkipLog`) with every other rank's: a collective (``all_gather_object``) when a
    default process group of several ranks is initialized, which every rank must call; else this rank's alone."""
    mine = (dict(counts), {p: reasons.get(p, "") for p in counts}, sorted(excluded))
    parts = [mine]
    if is_distributed():
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, mine)
    total: Counter[str] = Counter()
    why: dict[str, str] = {}
    left_out: set[str] = set()
    for part_counts, part_reasons, part_excluded in parts:
        total.update(part_counts)
        for path, reason in part_reasons.items():
            why.setdefault(path, reason)
        left_out.update(part_excluded)
    return GatheredSkips(total, why, frozenset(left_out))


def _summary(title: str, counts: Counter[str], reasons: Mapping[str, str], excluded: int) -> str:
    lines = [f"{title}: skipped {sum(counts.values())} clip(s) from {len(counts)} unreadable file(s)"]
    lines += [f"  {path} (x{n}): {reasons.get(path, '')}" for path, n in counts.most_common()]
    if excluded:
        lines.append(f"  ({excluded} unreadable file(s) were left out when the datasets were built)")
    return "\n".join(lines)


# metric logged at the end of each epoch of a stage (predict cannot log)
_METRICS = {"train": "data/skipped_clips", "validate": "data/val_skipped_clips", "test": "data/test_skipped_clips"}


class SkippedFilesReport(Callback):
    """At the end of each training, validation and test epoch, log how many clips that stage skipped
    (metrics ``data/skipped_clips``, ``data/val_skipped_clips``, ``data/test_skipped_clips``, summed over
    ranks) and, on rank 0 when any rank skipped any, a summary naming the files of all ranks
    (:func:`gather_skips`, a collective every rank joins at each epoch end). Each stage counts only its own
    batches: the validation run at the end of a training epoch is reported as validation, not training.
    The sanity check counts as validation.

    Reads the ``skip_log`` attribute (a :class:`SkipLog`) of the trainer's datamodule; does nothing with
    other datamodules. Each epoch's per-file counts (summed over ranks) are also kept in :attr:`histories`.

    Attributes:
        histories: stage (``"train"``, ``"validate"``, ``"test"``, ``"predict"``) → per-epoch
            ``{path: clips skipped}``.
        history: ``histories["train"]``.
    """

    def __init__(self) -> None:
        self.histories: dict[str, list[dict[str, int]]] = {stage: [] for stage in _STAGES}

    @property
    def history(self) -> list[dict[str, int]]:
        return self.histories["train"]

    def _report(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: SkipStage) -> None:
        skip_log = getattr(trainer.datamodule, "skip_log", None)
        if not isinstance(skip_log, SkipLog):
            return
        local = skip_log.pop_epoch(stage)
        counts, reasons, excluded = gather_skips(local, skip_log.reasons, skip_log.excluded)
        self.histories[stage].append(dict(counts))
        if stage in _METRICS:  # this rank's count, summed over ranks by the logger
            pl_module.log(_METRICS[stage], float(sum(local.values())), on_epoch=True, sync_dist=True, reduce_fx="sum")
        if counts and trainer.is_global_zero:
            epoch = f"epoch {trainer.current_epoch}"
            title = {"train": epoch, "validate": f"{epoch} validation", "test": "test", "predict": "predict"}[stage]
            if trainer.sanity_checking:
                title = "sanity check"
            log.warning(_summary(title, counts, reasons, len(excluded)))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, pl_module, "train")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, pl_module, "validate")

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, pl_module, "test")

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, pl_module, "predict")
