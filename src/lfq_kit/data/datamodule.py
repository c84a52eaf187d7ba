"""The LightningDataModule shared by the video datasets: manifest, clip datasets, loaders, skip accounting.

A dataset subclass says where its files are (:attr:`ClipDataModule.root`), which videos form the training
and evaluation splits (:meth:`~ClipDataModule.train_items`, :meth:`~ClipDataModule.eval_items`) and sets
``num_classes`` and ``class_names`` in ``__init__``; everything else lives here.

Listed files that do not exist are unreadable files like any other (left out with a warning naming each in
training, an error in evaluation), unless the subclass sets :attr:`ClipDataModule.drop_missing`: then they
are left out of both splits with one :class:`~lfq_kit.data.skips.MissingVideosWarning` per split giving
their number and a few names (Kinetics, where every copy lacks some clips). Either way a split none of whose
files exist is an error: the root is wrong.

Batches are dicts (see :func:`~lfq_kit.data.clips.collate_clips`): ``video`` float32 ``(B, 3, T, H, W)``
in [−1, 1] with ``H = W = resolution``, ``label`` int64 ``(B,)``, plus ``index``, ``frame_indices``,
``video_id``, ``skipped`` and ``skip_reasons``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from torchdata.stateful_dataloader import StatefulDataLoader

from .clips import OnError, VideoClipDataset
from .loaders import SplitLoaders
from .manifest import MISSING, VideoEntry, VideoItem, build_manifest
from .multiview import MultiViewClipDataset, multi_view_loader
from .sampling import ShortClipPolicy
from .skips import MissingVideosWarning, SkipLog

__all__ = ["ClipDataModule"]


def _check_present(entries: list[VideoEntry], root: Path, split: str) -> None:
    """A split none of whose files exist means a wrong root, not bad files: say so instead of skipping all.
    An empty split means an empty list or annotation file."""
    if not entries:
        raise ValueError(f"the {split} split under {root} lists no video: is its split or annotation file empty?")
    if all(e.reason == MISSING for e in entries):
        raise FileNotFoundError(
            f"none of the {len(entries)} {split} videos exist under {root}, e.g. {entries[0].video_id!r}; "
            "is the dataset root right and fully extracted?"
        )


class ClipDataModule(SplitLoaders):
    """Base of the video DataModules. Training takes one random clip per video per epoch (random crop,
    random flip); validation and test take ``clips_per_video`` evenly spaced clips per video (center crop).

    Training order, clip starts, crops, flips and replacements of bad clips are a function of (base seed,
    epoch, index), sharded across ranks, and the loaders are resumable mid-epoch (:mod:`lfq_kit.data.loaders`);
    evaluation shards cover every clip once over all ranks, without padding.

    Args:
        frames_per_clip: ``T`` (MAGVIT-v2: 17 = 1 + 4·4, encoded to 5 latent frames).
        frame_stride: source frames between consecutive clip frames.
        resolution: output height and width in pixels (short-side square crop, then resize).
        batch_size: clips per batch (per device).
        num_workers: DataLoader worker processes.
        clips_per_video: evenly spaced clips per video in validation and test.
        target_fps: resample every video to this frame rate first (None: keep each video's rate).
        short_clip: ``"lower_stride"``, ``"loop"`` or ``"skip"`` for videos shorter than a clip, see
            :mod:`lfq_kit.data.sampling`.
        random_flip: horizontal flips (p = 0.5) in training.
        eval_on_error: ``"raise"`` (default) or ``"skip"`` for unreadable files in validation and test.
            Training always skips them.
        manifest_dir: directory of the manifest cache (None: the dataset root if writable, else the user
            cache directory; see :mod:`lfq_kit.data.manifest`).
        pin_memory: pin batches in page-locked memory (only when CUDA is available).
        persistent_workers: keep workers alive between epochs (only with ``num_workers > 0``).
        decode_threads: decoder threads per clip read (1 suits workers; 0: FFmpeg's choice).
        cache_frames: in training, decode each video once per process and cut clips from memory (frames
            resized to a short side of ``resolution``, uint8); for small datasets, see
            :mod:`lfq_kit.data.frame_cache`. Validation and test always decode each clip, so their metrics do
            not depend on this flag.
        train_frames_per_clip: ``T`` of training clips when it differs from ``frames_per_clip`` (which then
            only sets validation, test and predict clips). A causal tokenizer trained on ``1 + 4k``-frame
            clips encodes any ``1 + 4k'`` (None: ``frames_per_clip``).
        train_crop_size: train on random ``train_crop_size``-pixel square windows of the ``resolution``-sized
            clips, evaluate on whole frames (None: whole frames in training too). Patch training of a fully
            convolutional tokenizer: same pixel scale, a fraction of the compute per step.
        test_clips_per_video, test_crops: multi-view testing (``lfq-kit test``): evenly spaced clips (None:
            ``clips_per_video``) × square crops along the long side per video, batches with ``video_index`` and
            ``view_index``; see :mod:`lfq_kit.data.multiview` (Kinetics-400 protocol: 5 × 3).
        seed: base seed of the training order and augmentation (None: ``seed_everything``'s seed, else 0; see
            :func:`~lfq_kit.seeding.base_seed`).

    Attributes:
        num_classes, class_names: set by subclasses in ``__init__``.
        skip_log: the :class:`~lfq_kit.data.skips.SkipLog` fed by every batch (``on_after_batch_transfer``).
        missing: split (``"training"``, ``"evaluation"``) → video ids of listed files that do not exist and
            were left out (only with :attr:`drop_missing`).
    """

    #: Short dataset name, part of the manifest cache file name.
    name = "videos"
    #: Whether the manifest may be cached in the dataset root.
    cache_in_root = True
    #: Leave listed files that do not exist out of both splits with one warning (see the module docstring)
    #: instead of treating them as unreadable.
    drop_missing = False
    #: Names of :meth:`predict_dataloader`'s loaders, in order (``TokenWriter`` writes one folder each).
    predict_splits = ("train", "val")

    def __init__(
        self,
        frames_per_clip: int = 17,
        frame_stride: int = 1,
        resolution: int = 128,
        batch_size: int = 8,
        num_workers: int = 4,
        clips_per_video: int = 1,
        target_fps: float | None = None,
        short_clip: ShortClipPolicy = "lower_stride",
        random_flip: bool = True,
        eval_on_error: OnError = "raise",
        manifest_dir: str | None = None,
        pin_memory: bool = True,
        persistent_workers: bool = False,
        decode_threads: int = 1,
        cache_frames: bool = False,
        train_frames_per_clip: int | None = None,
        train_crop_size: int | None = None,
        test_clips_per_video: int | None = None,
        test_crops: int = 1,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size}, {num_workers}")
        if train_frames_per_clip is not None and train_frames_per_clip < 1:
            raise ValueError(f"train_frames_per_clip must be >= 1 (or null), got {train_frames_per_clip}")
        if train_crop_size is not None and not 1 <= train_crop_size <= resolution:
            raise ValueError(
                f"train_crop_size must be within 1 .. resolution ({resolution}) or null, got {train_crop_size}"
            )
        self.frames_per_clip = frames_per_clip
        self.frame_stride = frame_stride
        self.resolution = resolution
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.clips_per_video = clips_per_video
        self.target_fps = target_fps
        self.short_clip = short_clip
        self.random_flip = random_flip
        self.eval_on_error = eval_on_error
        self.manifest_dir = manifest_dir
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.decode_threads = decode_threads
        self.cache_frames = cache_frames
        self.train_frames_per_clip = train_frames_per_clip
        self.train_crop_size = train_crop_size
        self.test_clips_per_video = test_clips_per_video
        self.test_crops = test_crops
        self.seed = seed
        self.test_set: MultiViewClipDataset | None = None
        self.num_classes = 0
        self.class_names: list[str] = []
        self.skip_log = SkipLog()
        self.missing: dict[str, list[str]] = {}
        self.train_set: VideoClipDataset | None = None
        self.val_set: VideoClipDataset | None = None
        self.predict_sets: list[VideoClipDataset] | None = None

    # --- what a dataset subclass provides -------------------------------------------------------------

    @property
    def root(self) -> Path:
        """Directory that item paths are relative to."""
        raise NotImplementedError

    def train_items(self) -> list[VideoItem]:
        """The training split."""
        raise NotImplementedError

    def eval_items(self) -> list[VideoItem]:
        """The validation/test split."""
        raise NotImplementedError

    def make_train_set(self, entries: list[VideoEntry]) -> VideoClipDataset:
        """The training dataset over ``entries`` (override to change the sampling)."""
        return VideoClipDataset(
            entries,
            sampling="random",
            train=True,
            flip_p=0.5 if self.random_flip else 0.0,
            **self._clip_args(train=True),
        )

    # --- shared machinery ---------------------------------------------------------------------------

    def _clip_args(self, train: bool = False) -> dict[str, Any]:
        """Arguments of :class:`VideoClipDataset` for a split; the frame cache, the training clip length and
        the training crop apply to training only."""
        return {
            "frames_per_clip": (self.train_frames_per_clip or self.frames_per_clip) if train else self.frames_per_clip,
            "frame_stride": self.frame_stride,
            "resolution": self.resolution,
            "target_fps": self.target_fps,
            "short_clip": self.short_clip,
            "decode_threads": self.decode_threads,
            "cache_frames": self.cache_frames and train,
            "crop_size": self.train_crop_size if train else None,
        }

    def _manifest(self, items: list[VideoItem]) -> list[VideoEntry]:
        return build_manifest(self.root, items, self.name, self.manifest_dir, prefer_root=self.cache_in_root)

    def _present(self, entries: list[VideoEntry], split: str) -> list[VideoEntry]:
        """``entries`` without missing files when :attr:`drop_missing` is set (one warning per split)."""
        if not self.drop_missing:
            return entries
        missing = [e.video_id for e in entries if e.reason == MISSING]
        if missing and split not in self.missing:
            shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
            warnings.warn(
                f"{len(missing)} of the {len(entries)} {split} videos listed are missing under {self.root} and "
                f"left out: {shown}",
                MissingVideosWarning,
                stacklevel=3,
            )
        self.missing[split] = missing
        return [e for e in entries if e.reason != MISSING]

    def prepare_data(self) -> None:
        """Probe every video once (local rank 0) so that ``setup`` on every rank reads the cached manifest."""
        self._manifest(self.train_items() + self.eval_items())

    def setup(self, stage: str | None = None) -> None:
        built = {"predict": self.predict_sets is not None, "test": self.test_set is not None}
        if built.get(stage, self.train_set is not None and self.val_set is not None):
            return
        train_items, eval_items = self.train_items(), self.eval_items()
        entries = self._manifest(train_items + eval_items)  # one cache read for both splits
        _check_present(entries[: len(train_items)], self.root, "training")
        _check_present(entries[len(train_items) :], self.root, "evaluation")
        if stage in ("fit", None) and self.train_set is None:
            self.train_set = self.make_train_set(self._present(entries[: len(train_items)], "training"))
            self.skip_log.exclude(self.train_set.excluded)
        if stage in ("fit", "validate", "test", None) and self.val_set is None:
            self.val_set = self._eval_set(entries[len(train_items) :], "evaluation")
        if stage == "test" and self.test_set is None:
            self.test_set = MultiViewClipDataset(
                self._present(entries[len(train_items) :], "evaluation"),
                crops=self.test_crops,
                clips_per_video=self.test_clips_per_video or self.clips_per_video,
                on_error=self.eval_on_error,
                **self._clip_args(),
            )
            self.skip_log.exclude(self.test_set.excluded)
        if stage == "predict" and self.predict_sets is None:
            self.predict_sets = [
                self._eval_set(entries[: len(train_items)], "training"),
                self._eval_set(entries[len(train_items) :], "evaluation"),
            ]

    def _eval_set(self, entries: list[VideoEntry], split: str) -> VideoClipDataset:
        """Evaluation-style clips of ``entries``: ``clips_per_video`` evenly spaced, center crop, no flip."""
        dataset = VideoClipDataset(
            self._present(entries, split),
            sampling="uniform",
            clips_per_video=self.clips_per_video,
            train=False,
            on_error=self.eval_on_error,
            **self._clip_args(),
        )
        self.skip_log.exclude(dataset.excluded)
        return dataset

    def test_dataloader(self) -> StatefulDataLoader:
        """``test_clips_per_video × test_crops`` views of every evaluation video (:mod:`lfq_kit.data.multiview`)."""
        if self.test_set is None:
            raise RuntimeError(f"{type(self).__name__}.setup('test') must run before test_dataloader()")
        return multi_view_loader(
            self.test_set, self.batch_size, self.num_workers, self.pin_memory, trainer=self.trainer
        )

    def predict_dataloader(self) -> list[StatefulDataLoader]:
        """Every video of both splits, evaluation-style (:attr:`predict_splits` names them in order): what
        ``lfq-kit predict`` with :class:`~lfq_kit.callbacks.TokenWriter` turns into token shards."""
        if self.predict_sets is None:
            raise RuntimeError(f"{type(self).__name__}.setup('predict') must run before predict_dataloader()")
        return [self._loader(dataset, train=False) for dataset in self.predict_sets]
