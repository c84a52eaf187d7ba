"""Video-level scores from multi-view testing (VideoMAE's ``merge()`` in MCG-NJU/VideoMAE ``engine_for_finetuning.py``;
every video counts exactly once, on one rank or several).

Each test view is a ``(video, view)`` pair (``view = clip · crops + crop``). Views are first de-duplicated by that
key, keeping the first occurrence, which removes the repeats a distributed sampler pads its last batch with; then
each video's score is the **mean of its views' softmax probabilities**, and the video counts once, whatever the
number of ranks or of its views that arrived.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["VideoScores", "aggregate_views"]


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
        raise ValueError(f"need probs (N, K) and labels, videos, views (N,), got {tuple(probs.shape)}, "
                         f"{tuple(labels.shape)}, {tuple(videos.shape)}, {tuple(views.shape)}")  # fmt: skip
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
