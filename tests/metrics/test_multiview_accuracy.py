"""MultiViewAccuracy: video-level accuracy of multi-view testing as a torchmetrics Metric whose views are gathered
across ranks; a video split over two ranks (with a padded repeat) counts once, as on one rank."""

import torch
from torchmetrics.functional.classification import multiclass_accuracy

from lfq_kit.metrics import MultiViewAccuracy
from lfq_kit.metrics.multiview import aggregate_views


def _views() -> tuple[torch.Tensor, ...]:
    probs = torch.softmax(torch.randn(7, 6, generator=torch.Generator().manual_seed(0)), -1)
    videos = torch.tensor([0, 0, 1, 1, 1, 2, 0])
    views = torch.tensor([0, 1, 0, 1, 2, 0, 0])  # the last row repeats view (0, 0): a padding repeat
    labels = torch.tensor([2, 2, 0, 0, 0, 1, 2])
    probs[6] = torch.nn.functional.one_hot(torch.tensor(5), 6).float()  # a differing copy would change the mean
    return probs, labels, videos, views


def test_it_scores_each_video_once_from_batches_of_views():
    probs, labels, videos, views = _views()
    metric = MultiViewAccuracy(num_classes=6)
    metric.update(probs[:3], labels[:3], videos[:3], views[:3])
    metric.update(probs[3:], labels[3:], videos[3:], views[3:])
    top1, top5, count = metric.compute()
    scores = metric.scores()
    assert float(count) == 3
    expected = aggregate_views(probs, labels, videos, views)
    torch.testing.assert_close(scores.probs, expected.probs)
    assert scores.videos.tolist() == [0, 1, 2] and scores.views.tolist() == [2, 3, 1]
    manual = torch.stack([probs[0:2].mean(0), probs[2:5].mean(0), probs[5]])
    hits = (manual.argmax(1) == torch.tensor([2, 0, 1])).float().mean() * 100
    assert float(top1) == float(hits)
    top5_ref = 100 * multiclass_accuracy(manual, torch.tensor([2, 0, 1]), 6, top_k=5, average="micro")
    assert float(top5) == float(top5_ref)
    metric.reset()
    metric.update(probs[5:6], labels[5:6], videos[5:6], views[5:6])
    assert metric.scores().videos.tolist() == [2] and float(metric.compute().videos) == 1


def test_two_ranks_with_padded_overlapping_shards_equal_one_rank():
    probs, labels, videos, views = _views()
    shards = ([0, 2, 4, 6], [1, 3, 5, 0])  # rank 1's last view repeats rank 0's first (sampler padding)
    metrics = [MultiViewAccuracy(6, distributed_available_fn=lambda: True) for _ in shards]
    for metric, rows in zip(metrics, shards):
        metric.update(probs[rows], labels[rows], videos[rows], views[rows])
    states = [[torch.cat(getattr(m, n)) for n in ("probs", "labels", "videos", "views")] for m in metrics]

    def gather(rank):  # what torch.distributed's all_gather hands each rank: every rank's state, in rank order
        queue = [list(s) for s in states]
        return lambda x, group=None: [q.pop(0) for q in queue]

    results = []
    for rank, metric in enumerate(metrics):
        metric.dist_sync_fn = gather(rank)
        results.append(metric.compute())
        metric.dist_sync_fn = gather(rank)
        results[-1] = (results[-1], metric.scores())
    one = MultiViewAccuracy(6)
    one.update(probs[:6], labels[:6], videos[:6], views[:6])
    alone, alone_scores = one.compute(), one.scores()
    for (top1, top5, count), scores in results:
        assert scores.videos.tolist() == [0, 1, 2] and scores.views.tolist() == [2, 3, 1] and float(count) == 3
        torch.testing.assert_close(scores.probs, alone_scores.probs)
        assert (float(top1), float(top5)) == (float(alone.top1), float(alone.top5))
