"""Multi-view test clips: ``clips`` evenly spaced clips × ``crops`` spatial crops per video (VideoMAE's test
protocol, e.g. Kinetics-400 5 × 3; MCG-NJU/VideoMAE ``kinetics.py``).

Crop ``c`` of ``k`` is the largest square of the frame at offset ``round(c · slack / (k − 1))`` along the long side
(``slack`` = long − short side): left, center and right (top, center, bottom for portrait video) for 3 crops, the
center for 1 (then the views equal the validation clips). Each item carries ``video_index`` (position of its video
in the dataset) and ``view_index`` (``clip · crops + crop``), the keys
:func:`lfq_kit.metrics.multiview.aggregate_views` groups and de-duplicates by.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor
from torchdata.stateful_dataloader import StatefulDataLoader

from .clips import VideoClipDataset, collate_clips
from .decode import read_frames
from .loaders import build_loader
from .manifest import VideoEntry
from .retry import Attempt
from .transforms import resize, to_signed_unit

__all__ = ["MultiViewClipDataset", "collate_views", "crop_view", "multi_view_loader"]


def crop_view(frames: Tensor, crop: int, crops: int, resolution: int) -> Tensor:
    """uint8 ``(T, H, W, 3)`` → float32 ``(3, T, resolution, resolution)`` in ``[−1, 1]``: square ``crop`` of
    ``crops`` along the long side, resized."""
    h, w = frames.shape[1:3]
    side, slack = min(h, w), abs(h - w)
    offset = slack // 2 if crops == 1 else round(crop * slack / (crops - 1))
    square = frames[:, offset : offset + side] if h > w else frames[:, :, offset : offset + side]
    video = to_signed_unit(resize(square.permute(0, 3, 1, 2), resolution))
    return video.permute(1, 0, 2, 3).contiguous()


def collate_views(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`~lfq_kit.data.clips.collate_clips` plus ``video_index`` and ``view_index`` int64 ``(B,)``."""
    batch = collate_clips(samples)
    batch["video_index"] = torch.tensor([s["video_index"] for s in samples], dtype=torch.long)
    batch["view_index"] = torch.tensor([s["view_index"] for s in samples], dtype=torch.long)
    return batch


class MultiViewClipDataset(VideoClipDataset):
    """``clips_per_video × crops`` evaluation views of every video (item ``i``: clip ``i // crops``, crop
    ``i % crops``), no flip, errors raised unless ``on_error="skip"``.

    Args:
        entries: manifest entries.
        crops: spatial crops per clip (3 in VideoMAE's protocol).
        kwargs: :class:`~lfq_kit.data.clips.VideoClipDataset`'s clip arguments (``clips_per_video``, ...);
            sampling is ``"uniform"`` and ``train`` False.

    Raises:
        ValueError: ``crops < 1``, plus the base class's errors.
    """

    def __init__(self, entries: Sequence[VideoEntry], crops: int = 3, **kwargs: Any) -> None:
        if crops < 1:
            raise ValueError(f"crops must be >= 1, got {crops}")
        kwargs.update(sampling="uniform", train=False, crop_size=None)
        super().__init__(entries, **kwargs)
        self.crops = crops
        self.resolution = self.transform.resolution

    def __len__(self) -> int:
        return len(self.sampler) * self.crops

    def _attempt(self, index: int) -> Attempt:
        clip, crop = divmod(index, self.crops)
        video, frames = self.sampler(clip)
        entry = self.entries[video]

        def read() -> dict[str, Any]:
            if self.frame_cache is not None:
                raw = self.frame_cache.clip(entry, frames)
            else:
                raw = read_frames(entry.path, frames, entry.info.start_pts, self.decode_threads)
            return {
                "video": crop_view(raw, crop, self.crops, self.resolution),
                "label": entry.label,
                "index": index,
                "frame_indices": torch.from_numpy(frames),
                "video_id": entry.video_id,
                "video_index": video,
                "view_index": (clip % self.sampler.clips_per_video) * self.crops + crop,
            }

        return Attempt(video, entry.path, read)


def multi_view_loader(
    dataset: MultiViewClipDataset,
    batch_size: int,
    num_workers: int = 0,
    pin_memory: bool = False,
    trainer: L.Trainer | None = None,
) -> StatefulDataLoader:
    """The test loader of a multi-view set, batched with :func:`collate_views`: in order, this rank's unpadded
    shard (views ``r, r + W, …``; see :func:`~lfq_kit.data.loaders.build_loader`), so over all ranks every view
    is read once and :func:`~lfq_kit.metrics.multiview.aggregate_views` sees no padded repeats."""
    return build_loader(
        dataset,
        batch_size,
        train=False,
        trainer=trainer,
        num_workers=num_workers,
        collate_fn=collate_views,
        pin_memory=pin_memory,
    )
