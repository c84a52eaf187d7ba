"""The bad-file summary of an epoch covers every rank: two gloo processes on CPU, each skipping other files; the
report sums the counts, unions the names and prints the summary once, on rank 0."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import torch.distributed as dist
import torch.multiprocessing as mp

from lfq_kit.data import SkipLog, SkippedFilesReport, gather_skips

WORLD = 2


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _ledger(rank: int) -> SkipLog:
    log = SkipLog()
    log.exclude({f"/data/left_out{rank}.mp4": "empty"})
    log.record("/data/shared.mp4", "bad frame", "train")  # both ranks hit it
    for _ in range(rank + 1):
        log.record(f"/data/only{rank}.mp4", f"broken {rank}", "train")
    log.record("/data/val.mp4", "truncated", "validate")  # another stage: not in the training summary
    return log


def _worker(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        log = _ledger(rank)
        gathered = gather_skips(log.pop_epoch("train"), log.reasons, log.excluded)
        # the callback, on a stand-in trainer and module
        report, logged, lines = SkippedFilesReport(), [], _Lines()
        logging.getLogger("lfq_kit.data.skips").addHandler(lines)
        trainer = SimpleNamespace(
            datamodule=SimpleNamespace(skip_log=_ledger(rank)),
            is_global_zero=rank == 0,
            current_epoch=3,
            sanity_checking=False,
        )
        module = SimpleNamespace(log=lambda name, value, **kw: logged.append((name, value, kw["reduce_fx"])))
        report.on_train_epoch_end(trainer, module)
        results[rank] = (
            dict(gathered.counts),
            gathered.reasons,
            sorted(gathered.excluded),
            report.history,
            logged,
            lines.lines,
        )
    finally:
        dist.destroy_process_group()


def test_epoch_summary_gathers_every_rank(tmp_path):
    results = mp.Manager().dict()
    # fork: the children inherit the imported modules (spawning re-imports lightning in each, ~10 s here)
    mp.start_processes(_worker, args=(str(tmp_path / "init"), results), nprocs=WORLD, join=True, start_method="fork")
    counts = {"/data/shared.mp4": 2, "/data/only0.mp4": 1, "/data/only1.mp4": 2}
    reasons = {"/data/shared.mp4": "bad frame", "/data/only0.mp4": "broken 0", "/data/only1.mp4": "broken 1"}
    for rank in range(WORLD):
        got_counts, got_reasons, excluded, history, logged, lines = results[rank]
        assert got_counts == counts and got_reasons == reasons
        assert excluded == ["/data/left_out0.mp4", "/data/left_out1.mp4"]
        assert history == [counts]  # every rank keeps the whole epoch's counts
        # the metric is this rank's count (summed over ranks by the logger): 2 on rank 0, 3 on rank 1
        assert logged == [("data/skipped_clips", float(2 + rank), "sum")]
    assert results[1][5] == []  # one summary, printed by rank 0
    (summary,) = results[0][5]
    assert summary.splitlines()[0] == "epoch 3: skipped 5 clip(s) from 3 unreadable file(s)"
    assert "/data/only1.mp4 (x2): broken 1" in summary and "/data/only0.mp4 (x1): broken 0" in summary
    assert "(2 unreadable file(s) were left out" in summary and "val.mp4" not in summary


def test_one_process_gathers_its_own():
    log = _ledger(0)
    gathered = gather_skips(log.pop_epoch("validate"), log.reasons, log.excluded)
    assert gathered.counts == {"/data/val.mp4": 1} and gathered.reasons == {"/data/val.mp4": "truncated"}
    assert gathered.excluded == {"/data/left_out0.mp4"}
