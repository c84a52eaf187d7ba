"""CodebookUsage's sparse histogram: bounded memory at K = 2^40 / 2^62, exact agreement with the dense
histogram, several codebooks, reset, forward, merge_state and the rank sync path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lfq_kit.metrics import CodebookUsage

WORLD = 2
# Rank 0's and rank 1's indices for two metrics: uneven sizes, and a rank that saw nothing.
GLOO_BATCHES = {
    "uneven": (torch.tensor([[1, 5], [1, 2**40 - 1], [3, 5]]), torch.tensor([[3, 0], [3, 5], [7, 7], [1, 1], [1, 5]])),
    "rank1_empty": (torch.tensor([[1, 5], [1, 2**40 - 1], [3, 5]]), torch.empty(0, 2, dtype=torch.long)),
}

H_31_BITS = 2 - 0.75 * math.log2(3)  # counts 3:1
PPL_31 = 4 / 3**0.75


def _state_numel(metric: CodebookUsage) -> int:
    """Elements held in the metric's states (dense table, or both sparse lists)."""
    total = 0
    for state in metric.metric_state.values():
        total += state.numel() if isinstance(state, torch.Tensor) else sum(t.numel() for t in state)
    return total


def _skewed(gen: torch.Generator, shape: tuple[int, ...], k: int) -> torch.Tensor:
    """Indices in [0, k) with a skewed histogram (squares mod k), so counts differ between codes."""
    return torch.randint(0, k, shape, generator=gen) ** 2 % k


def _assert_same_result(a: CodebookUsage, b: CodebookUsage) -> None:
    ha, hb = a.histogram(), b.histogram()
    assert torch.equal(ha.keys, hb.keys) and torch.equal(ha.counts, hb.counts)
    ra, rb = a.compute(), b.compute()
    assert ra.keys() == rb.keys()
    for name in ra:
        assert ra[name].dtype == torch.float32
        assert torch.equal(ra[name], rb[name]), name


def test_dense_up_to_max_dense_size_and_sparse_above() -> None:
    assert not CodebookUsage(2**20).sparse and CodebookUsage(2**20).counts.shape == (1, 2**20)
    assert not CodebookUsage(2**18, num_codebooks=4).sparse
    assert CodebookUsage(2**18, num_codebooks=5).sparse
    assert CodebookUsage(2**21).sparse
    small = CodebookUsage(4, max_dense_size=0)
    assert small.sparse and not hasattr(small, "counts")
    assert not CodebookUsage(4, max_dense_size=4).sparse and CodebookUsage(4, max_dense_size=3).sparse


@pytest.mark.parametrize("dim", [27, 40, 62])
def test_huge_codebooks_hold_only_the_codes_seen(dim: int) -> None:
    k = 2**dim
    metric = CodebookUsage(k)
    assert metric.sparse and _state_numel(metric) == 0  # dense would be 8 · 2^dim bytes
    gen = torch.Generator().manual_seed(dim)
    seen = []
    for _ in range(6):
        batch = torch.randint(0, k, (2, 3, 16, 16), generator=gen)
        batch[0, 0, :4] = k - 1  # the largest code, repeated
        seen.append(batch.reshape(-1))
        metric.update(batch)
    seen = torch.cat(seen)
    distinct, counts = torch.unique(seen, return_counts=True)
    assert _state_numel(metric) <= 2 * 2 * distinct.numel()  # two lists, at most 2 entries per code each
    hist = metric.histogram()
    assert torch.equal(hist.keys, distinct) and torch.equal(hist.counts, counts)
    out = metric.compute()
    p = counts.double() / counts.sum()
    bits = float(-(p * p.log2()).sum())
    assert out["usage"].item() == pytest.approx(distinct.numel() / k, rel=1e-6)
    assert out["entropy_bits"].item() == pytest.approx(bits, rel=1e-6)
    assert out["perplexity"].item() == pytest.approx(2**bits, rel=1e-6)
    assert 0 < out["usage"] < 1e-3


@pytest.mark.parametrize("num_codebooks", [1, 3])
def test_sparse_equals_dense_exactly(num_codebooks: int) -> None:
    k = 64
    gen = torch.Generator().manual_seed(num_codebooks)
    dense = CodebookUsage(k, num_codebooks)
    sparse = CodebookUsage(k, num_codebooks, max_dense_size=0)
    assert not dense.sparse and sparse.sparse
    for batch in (1, 7, 0, 40, 3, 100, 2, 2, 9):  # uneven sizes: several compactions, one empty batch
        indices = _skewed(gen, (batch, 5, num_codebooks), k).to(torch.int32)
        if num_codebooks == 1:
            indices = indices.squeeze(-1)
        dense.update(indices)
        sparse.update(indices)
    _assert_same_result(dense, sparse)
    # the sparse histogram is the dense table's nonzero entries
    table = torch.zeros(num_codebooks * k, dtype=torch.long)
    hist = sparse.histogram()
    table[hist.keys] = hist.counts
    assert torch.equal(table.view(num_codebooks, k), dense.counts)
    out = sparse.compute()
    assert out["usage"].shape == (() if num_codebooks == 1 else (num_codebooks,))
    assert ((out["usage"] > 0) & (out["usage"] < 1)).all()


def test_sparse_multi_codebook_hand_computed_values() -> None:
    tokens = torch.arange(8)
    indices = torch.stack([tokens % 4, torch.full_like(tokens, 3), (tokens % 4 == 3).long()], dim=-1)
    metric = CodebookUsage(4, num_codebooks=3, max_dense_size=0)
    metric.update(indices.view(2, 4, 3))
    hist = metric.histogram()  # keys codebook · 4 + index
    assert hist.keys.tolist() == [0, 1, 2, 3, 7, 8, 9] and hist.counts.tolist() == [2, 2, 2, 2, 8, 6, 2]
    out = metric.compute()
    torch.testing.assert_close(out["usage"], torch.tensor([1.0, 0.25, 0.5]), rtol=0, atol=0)
    torch.testing.assert_close(out["perplexity"], torch.tensor([4.0, 1.0, PPL_31]), rtol=1e-6, atol=0)
    torch.testing.assert_close(out["entropy_bits"], torch.tensor([2.0, 0.0, H_31_BITS]), rtol=1e-6, atol=0)


def test_sparse_memory_stays_bounded_over_many_updates() -> None:
    k = 2**40
    codes = torch.randint(0, k, (50,), generator=torch.Generator().manual_seed(1))
    metric = CodebookUsage(k)
    gen = torch.Generator().manual_seed(2)
    for step in range(300):
        metric.update(codes[torch.randint(0, 50, (64,), generator=gen)])
        assert _state_numel(metric) <= 2 * 2 * 50, step
        sizes = [t.numel() for t in metric.code_keys]
        assert all(a > 2 * b for a, b in zip(sizes, sizes[1:])), sizes  # geometric: O(log) entries
    hist = metric.histogram()
    assert int(hist.counts.sum()) == 300 * 64 and set(hist.keys.tolist()) <= set(codes.tolist())


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_sparse_empty_and_reset() -> None:
    metric = CodebookUsage(2**40, num_codebooks=2)
    out = metric.compute()  # before any update
    assert all(torch.equal(v, torch.zeros(2)) for v in out.values())
    metric.update(torch.empty(0, 2, dtype=torch.long))  # an empty batch is a no-op
    assert _state_numel(metric) == 0
    metric.update(torch.tensor([[5, 2**40 - 1], [6, 0]]))
    metric.reset()
    assert _state_numel(metric) == 0 and metric.compute()["usage"].tolist() == [0.0, 0.0]
    metric.update(torch.tensor([[2, 9], [2, 9], [2, 9], [0, 9]]))
    out = metric.compute()
    torch.testing.assert_close(out["perplexity"], torch.tensor([PPL_31, 1.0]), rtol=1e-6, atol=0)
    torch.testing.assert_close(out["usage"], torch.tensor([2.0, 1.0]) / 2**40, rtol=1e-7, atol=0)


def test_sparse_out_of_range_raises_and_leaves_state_untouched() -> None:
    k = 2**40
    metric = CodebookUsage(k)
    metric.update(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=rf"\[0, {k}\); got 2 out-of-range element\(s\) with values -1, {k}$"):
        metric.update(torch.tensor([0, k, -1]))
    assert metric.histogram().keys.tolist() == [1] and metric.histogram().counts.tolist() == [2]


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match=r"num_codebooks \* codebook_size <= 2\^63 - 1.*= 9223372036854775808"):
        CodebookUsage(2**62, num_codebooks=2)
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="max_dense_size must be a non-negative int"):
            CodebookUsage(4, max_dense_size=bad)


def test_sparse_merge_state_equals_one_metric_over_both() -> None:
    gen = torch.Generator().manual_seed(3)
    a, b = _skewed(gen, (30, 2), 16), _skewed(gen, (45, 2), 16)
    rank0, rank1 = (CodebookUsage(16, 2, max_dense_size=0) for _ in range(2))
    everything = CodebookUsage(16, 2)
    rank0.update(a)
    rank1.update(b)
    everything.update(torch.cat([a, b]))
    rank0.merge_state(rank1)
    assert len(rank0.code_keys) == 1  # merged into one entry
    _assert_same_result(rank0, everything)


def test_sparse_forward_returns_the_batch_and_accumulates_compactly() -> None:
    gen = torch.Generator().manual_seed(4)
    sparse, dense = CodebookUsage(32, max_dense_size=0), CodebookUsage(32)
    for _ in range(40):
        batch = _skewed(gen, (8,), 32)
        batch_only = CodebookUsage(32)
        batch_only.update(batch)
        step = sparse(batch)
        assert all(torch.equal(step[n], v) for n, v in batch_only.compute().items())
        dense.update(batch)
        assert _state_numel(sparse) <= 2 * 2 * 32
    _assert_same_result(sparse, dense)


class _FakeGather:
    """Stands in for torchmetrics' all_gather with two ranks: returns this rank's tensor and the other
    rank's payload for the same state (states are gathered in add_state order). Like NCCL / gloo, it
    requires both ranks to send the same dtype."""

    def __init__(self, other: CodebookUsage) -> None:
        payloads = []
        for state in (other.code_keys, other.code_counts):
            payloads.append(torch.cat(state) if state else torch.zeros(0, dtype=torch.long))
        self.payloads = iter(payloads)
        self.calls = 0

    def __call__(self, tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
        other = next(self.payloads)
        assert tensor.dtype == other.dtype == torch.long, (tensor.dtype, other.dtype)
        self.calls += 1
        return [tensor, other]


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
@pytest.mark.parametrize("case", ["both", "this_rank_empty", "other_rank_empty"])
def test_sparse_compute_concatenates_ranks_through_the_dist_sync_path(case: str) -> None:
    k = 2**40
    mine, theirs = torch.tensor([2, 2, 7, 2]), torch.tensor([0, 2**40 - 1, 7, 7, 7])
    other = CodebookUsage(k)
    reference = CodebookUsage(k)
    if case != "other_rank_empty":
        other.update(theirs)
        reference.update(theirs)
    gather = _FakeGather(other)
    metric = CodebookUsage(k, dist_sync_fn=gather, distributed_available_fn=lambda: True)
    if case != "this_rank_empty":
        metric.update(mine)
        reference.update(mine)
    local = metric.histogram()
    out = metric.compute()
    assert gather.calls == 2  # keys and counts, one gather each
    ref = reference.compute()
    assert all(torch.equal(out[n], ref[n]) for n in ref)
    # compute() restores the local state afterwards, so each rank keeps accumulating its own histogram
    after = metric.histogram()
    assert torch.equal(after.keys, local.keys) and torch.equal(after.counts, local.counts)


def _gloo_worker(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        out = {}
        for case, batches in GLOO_BATCHES.items():
            metric = CodebookUsage(2**40, num_codebooks=2)
            metric.update(batches[rank])
            out[case] = metric.compute()
        results[rank] = out
    finally:
        dist.destroy_process_group()


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")
def test_sparse_sync_over_two_gloo_ranks(tmp_path) -> None:
    """Real all-gather (2 gloo processes, about 5 s): both ranks get the global figures, also when one
    rank saw no index (torchmetrics' float32 stand-in for an empty list would break the int64 gather)."""
    results = mp.Manager().dict()
    mp.spawn(_gloo_worker, args=(str(tmp_path / "init"), results), nprocs=WORLD, join=True)
    for case, batches in GLOO_BATCHES.items():
        reference = CodebookUsage(2**40, num_codebooks=2)
        reference.update(torch.cat(batches))
        expected = reference.compute()
        for rank in range(WORLD):
            assert all(torch.equal(results[rank][case][n], expected[n]) for n in expected), (case, rank)
