"""Video-level accuracy of multi-view testing (VideoMAE's ``merge()`` in MCG-NJU/VideoMAE
``engine_for_finetuning.py``): every video counts exactly once, on one rank or several.

Each test view is a ``(video, view)`` pair (``view = clip · crops + crop``). Views are first de-duplicated by that
key, keeping the first occurrence, which removes the repeats a distributed sampler pads its last batch with; then
each video's score is the **mean of its views' softmax probabilities**, and the video counts once, whatever the
number of ranks or of its views that arrived. :class:`MultiViewAccuracy` keeps the views as torchmetrics states
gathered across ranks (uneven shards included) when computed; :func:`aggregate_views` is its arithmetic.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.functional.classification import multiclass_accuracy
from torchmetrics.utilities import dim_zero_cat

__all__ = ["MultiViewAccuracy", "MultiViewResult", "VideoScores", "aggregate_views"]

_STATES = ("probs", "labels", "videos", "views")


class VideoScores(NamedTuple):
    """Per-video results, videos in ascending id order: ``probs`` ``(V, K)`` float (mean view softmax),
    ``labels`` ``(V,)`` int64, ``videos`` ``(V,)`` int64 ids, ``views`` ``(V,)`` int64 distinct views counted."""

    probs: Tensor
    labels: Tensor
    videos: Tensor
    views: Tensor


def aggregate_views(probs: Tensor, labels: Tensor, videos: Tensor, views: Tensor) -> VideoScores:
    """Average de-duplicated view probabilities per video.

    Args:
        probs: ``(N, K)`` softmax probabilities of ``N`` views (repeats allowed).
        labels: ``(N,)`` int64 video labels.
        videos: ``(N,)`` int64 video ids ``>= 0``.
        views: ``(N,)`` int64 view ids ``>= 0`` within the video.

    Raises:
        ValueError: inputs of different lengths.
    """
    n = probs.shape[0]
    if not (labels.shape[0] == videos.shape[0] == views.shape[0] == n) or probs.ndim != 2:
        raise ValueError(
            f"need probs (N, K) and labels, videos, views (N,), got {tuple(probs.shape)}, "
            f"{tuple(labels.shape)}, {tuple(videos.shape)}, {tuple(views.shape)}"
        )
    videos, views = videos.long(), views.long()
    key = videos * (int(views.max()) + 1 if n else 1) + views
    uniq, inverse = torch.unique(key, return_inverse=True)
    position = torch.arange(n, device=key.device)
    first = torch.full((uniq.shape[0],), n, dtype=torch.long, device=key.device)
    first = first.scatter_reduce(0, inverse, position, reduce="amin")  # first occurrence of each view
    vid, slot = torch.unique(videos[first], return_inverse=True)
    count = torch.bincount(slot, minlength=vid.shape[0])
    total = torch.zeros(vid.shape[0], probs.shape[1], dtype=probs.dtype, device=probs.device)
    total.index_add_(0, slot, probs[first])
    label = torch.zeros(vid.shape[0], dtype=torch.long, device=labels.device).scatter(0, slot, labels[first].long())
    return VideoScores(total / count[:, None].to(total.dtype), label, vid, count)


class MultiViewResult(NamedTuple):
    """Top-1 and top-k accuracy in percent over the videos (``k = min(5, num_classes)``) and the number of videos
    counted, 0-dim float tensors."""

    top1: Tensor
    top5: Tensor
    videos: Tensor


class MultiViewAccuracy(Metric):
    """Video-level top-1 / top-5 accuracy of multi-view testing, synced across ranks.

    :meth:`update` takes each batch's views; :meth:`compute` gathers every rank's views (torchmetrics ``cat``
    states), merges them by :func:`aggregate_views` (each video once, padded repeats dropped) and scores the
    video-level probabilities, so every rank returns the same figures. :meth:`scores` gives the merged per-video
    scores themselves.

    Args:
        num_classes: ``K``.
        kwargs: torchmetrics' ``Metric`` options (``process_group``, ``dist_sync_fn``, ...).
    """

    full_state_update = False

    def __init__(self, num_classes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        for name in _STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, probs: Tensor, labels: Tensor, videos: Tensor, views: Tensor) -> None:
        """Add ``N`` views: ``(N, K)`` softmax probabilities, ``(N,)`` int64 labels, video ids and view ids."""
        self.probs.append(probs)
        self.labels.append(labels.long())
        self.videos.append(videos.long())
        self.views.append(views.long())

    def compute(self) -> MultiViewResult:
        scores = self._merge()
        k5 = min(5, self.num_classes)
        top1 = multiclass_accuracy(scores.probs, scores.labels, self.num_classes, top_k=1, average="micro")
        top5 = multiclass_accuracy(scores.probs, scores.labels, self.num_classes, top_k=k5, average="micro")
        return MultiViewResult(100 * top1, 100 * top5, torch.tensor(float(scores.videos.numel())))

    def scores(self) -> VideoScores:
        """The per-video scores of every rank's views (gathered as :meth:`compute` does; tensors keep their
        ``(V, ...)`` shapes, which torchmetrics' ``compute`` would squeeze for a single video)."""
        sync = self.sync_context(self.dist_sync_fn, should_sync=self._to_sync, should_unsync=self._should_unsync)
        with sync:
            return self._merge()

    def _merge(self) -> VideoScores:
        return aggregate_views(*(dim_zero_cat(getattr(self, name)) for name in _STATES))
