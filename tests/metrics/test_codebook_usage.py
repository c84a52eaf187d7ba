"""CodebookUsage: usage / perplexity on hand-checked histograms, accumulation, reset, errors, DDP sync."""

from __future__ import annotations

import math

import pytest
import torch

from lfq_kit.metrics import CodebookUsage
from lfq_kit.quantizers import LFQ

# Counts 3:1 → H = −(¾ ln ¾ + ¼ ln ¼) = ln 4 − ¾ ln 3 nats, perplexity 4 / 3^¾, entropy 2 − ¾ log2 3 bits.
H_31 = math.log(4) - 0.75 * math.log(3)
PPL_31 = 4 / 3**0.75  # 1.7547653506...
BITS_31 = 2 - 0.75 * math.log2(3)  # 0.8112781244...


def _close(actual: torch.Tensor, expected, rel: float = 1e-6) -> None:
    expected = torch.as_tensor(expected, dtype=torch.float32)
    assert actual.dtype == torch.float32
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=rel, atol=0.0)


def test_hand_computed_values_match_closed_form() -> None:
    assert H_31 == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)), rel=1e-15)
    assert PPL_31 == pytest.approx(math.exp(H_31), rel=1e-15)
    assert BITS_31 == pytest.approx(H_31 / math.log(2), rel=1e-15)


def test_uniform_usage_gives_full_usage_and_perplexity_k() -> None:
    k = 8
    metric = CodebookUsage(k)
    metric.update(torch.arange(4 * k).view(2, 2, k) % k)  # (B, H, W): every code 4 times
    out = metric.compute()
    assert set(out) == {"usage", "perplexity", "entropy_bits"}
    _close(out["usage"], 1.0)
    _close(out["perplexity"], float(k))
    _close(out["entropy_bits"], 3.0)


def test_uniform_usage_of_a_2_18_codebook() -> None:
    k = 2**18
    metric = CodebookUsage(k)
    metric.update(torch.randperm(k).view(4, 256, 256))
    out = metric.compute()
    assert metric.counts.shape == (1, k) and metric.counts.dtype == torch.int64
    _close(out["usage"], 1.0)
    _close(out["perplexity"], float(k), rel=1e-5)
    _close(out["entropy_bits"], 18.0, rel=1e-6)


def test_single_code_gives_usage_one_over_k_and_perplexity_one() -> None:
    k = 16
    metric = CodebookUsage(k)
    metric.update(torch.full((3, 5, 7), 5, dtype=torch.long))
    out = metric.compute()
    _close(out["usage"], 1 / k)
    _close(out["perplexity"], 1.0)
    _close(out["entropy_bits"], 0.0)
    assert metric.counts[0, 5] == 105 and metric.counts.sum() == 105


def test_two_codes_with_counts_3_to_1() -> None:
    metric = CodebookUsage(4)
    metric.update(torch.tensor([[2, 2], [2, 0]], dtype=torch.int32))  # any integer dtype
    out = metric.compute()
    assert metric.counts.tolist() == [[1, 0, 3, 0]]
    _close(out["usage"], 0.5)
    _close(out["perplexity"], PPL_31)
    _close(out["entropy_bits"], BITS_31)


def test_multi_codebook_shapes_and_per_codebook_values() -> None:
    k, n = 4, 3
    tokens = torch.arange(8)
    indices = torch.stack(
        [
            tokens % k,  # codebook 0: uniform over 4 codes
            torch.full_like(tokens, 3),  # codebook 1: collapsed on code 3
            (tokens % 4 == 3).long(),  # codebook 2: code 0 ×6, code 1 ×2 → 3:1
        ],
        dim=-1,
    ).view(2, 4, n)  # (B, T, num_codebooks)
    metric = CodebookUsage(k, num_codebooks=n)
    metric.update(indices)
    assert metric.counts.tolist() == [[2, 2, 2, 2], [0, 0, 0, 8], [6, 2, 0, 0]]
    out = metric.compute()
    _close(out["usage"], [1.0, 0.25, 0.5])
    _close(out["perplexity"], [4.0, 1.0, PPL_31])
    _close(out["entropy_bits"], [2.0, 0.0, BITS_31])


def test_accumulation_equals_one_update_with_the_concatenation() -> None:
    gen = torch.Generator().manual_seed(0)
    k, n = 32, 2
    chunks = [torch.randint(0, k, (b, 5, n), generator=gen) ** 2 % k for b in (1, 3, 4)]  # skewed histogram
    acc, once = CodebookUsage(k, n), CodebookUsage(k, n)
    for chunk in chunks:
        acc.update(chunk)
    once.update(torch.cat(chunks))
    assert torch.equal(acc.counts, once.counts)
    flat = torch.cat(chunks).view(-1, n)
    for c in range(n):  # reference histogram, one codebook at a time
        assert torch.equal(acc.counts[c], torch.bincount(flat[:, c], minlength=k))
    a, b = acc.compute(), once.compute()
    for name in a:
        assert torch.equal(a[name], b[name])
    p = acc.counts.double() / acc.counts.sum(-1, keepdim=True)
    ref_ppl = torch.exp(-(p * p.log()).nan_to_num().sum(-1))
    _close(a["perplexity"], ref_ppl.float())
    assert (a["usage"] < 1).all() and (a["perplexity"] < k * a["usage"]).all()


def test_empty_histogram_gives_zeros() -> None:
    metric = CodebookUsage(8, num_codebooks=2)
    with pytest.warns(UserWarning):  # torchmetrics: compute() called before update()
        out = metric.compute()
    _close(out["usage"], [0.0, 0.0])
    _close(out["perplexity"], [0.0, 0.0])
    _close(out["entropy_bits"], [0.0, 0.0])
    single = CodebookUsage(8)
    single.update(torch.empty(0, 4, dtype=torch.long))  # an empty batch is a no-op
    out = single.compute()
    assert all(v.shape == () and v.item() == 0.0 for v in out.values())


def test_reset_clears_the_histogram() -> None:
    metric = CodebookUsage(4)
    metric.update(torch.tensor([0, 1, 2, 3]))
    metric.reset()
    assert metric.counts.shape == (1, 4) and metric.counts.sum() == 0
    metric.update(torch.tensor([2, 2, 2, 0]))
    out = metric.compute()
    _close(out["usage"], 0.5)
    _close(out["perplexity"], PPL_31)


def test_out_of_range_index_raises_and_leaves_state_untouched() -> None:
    metric = CodebookUsage(4)
    metric.update(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=r"\[0, 4\); got 3 out-of-range element\(s\) with values -1, 4, 9"):
        metric.update(torch.tensor([[0, 4, -1], [2, 9, 3]]))
    assert metric.counts.tolist() == [[0, 2, 0, 0]]


def test_out_of_range_message_truncates_long_lists() -> None:
    with pytest.raises(ValueError, match=r"values 4, 5, 6, 7, 8, 9, 10, 11 \(and 2 more\)"):
        CodebookUsage(4).update(torch.arange(14))


def test_bad_shapes_dtypes_and_arguments_raise() -> None:
    metric = CodebookUsage(4, num_codebooks=3)
    with pytest.raises(ValueError, match=r"expects indices of shape \(\.\.\., 3\); got shape \(5, 2\)"):
        metric.update(torch.zeros(5, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        metric.update(torch.tensor(1))
    with pytest.raises(ValueError, match="integer index tensor, got torch.float32"):
        CodebookUsage(4).update(torch.zeros(3))
    with pytest.raises(ValueError, match="integer index tensor, got torch.bool"):
        CodebookUsage(4).update(torch.zeros(3, dtype=torch.bool))
    for bad in ({"codebook_size": 0}, {"codebook_size": 4, "num_codebooks": 0}, {"codebook_size": 4.0}):
        with pytest.raises(ValueError, match="must be a positive int"):
            CodebookUsage(**bad)


def test_metric_flags() -> None:
    assert CodebookUsage.full_state_update is False
    assert CodebookUsage.higher_is_better is True
    assert CodebookUsage.is_differentiable is False


def test_merge_state_sums_histograms_like_a_rank_reduction() -> None:
    rank0, rank1, everything = CodebookUsage(4, 2), CodebookUsage(4, 2), CodebookUsage(4, 2)
    a = torch.tensor([[[0, 3], [0, 3]]])  # codebook 0: code 0 ×2, codebook 1: code 3 ×2
    b = torch.tensor([[[1, 3], [0, 2]]])
    rank0.update(a)
    rank1.update(b)
    everything.update(torch.cat([a, b]))
    rank0.merge_state(rank1)
    assert rank0.counts.tolist() == [[3, 1, 0, 0], [0, 0, 1, 3]]
    assert torch.equal(rank0.counts, everything.counts)
    out = rank0.compute()
    _close(out["usage"], [0.5, 0.5])
    _close(out["perplexity"], [PPL_31, PPL_31])


def test_counts_quantizer_indices() -> None:
    torch.manual_seed(0)
    quantizer = LFQ(dim=4).eval()
    out = quantizer(torch.randn(2, 4, 3, 8, 8))  # (B, C, T, H, W)
    metric = CodebookUsage(quantizer.codebook_size)
    metric.update(out.indices)
    assert metric.counts.sum() == out.indices.numel()
    usage = metric.compute()["usage"]
    _close(usage, torch.unique(out.indices).numel() / quantizer.codebook_size)


def test_compute_sums_counts_over_ranks_through_the_dist_sync_path() -> None:
    """The real torchmetrics sync path (gather → stack → ``dist_reduce_fx="sum"``) with a simulated 2-rank gather.

    ``distributed_available_fn`` reports a distributed run and ``dist_sync_fn`` stands in for
    ``all_gather``: it returns this rank's state followed by the other rank's. A real 2-process gloo run
    gives the same numbers but takes > 10 s on 2 CPU cores (two torch + torchmetrics imports).
    """
    other_rank = CodebookUsage(4)
    other_rank.update(torch.tensor([0]))  # rank 1 sees code 0 once

    gathered: list[torch.Tensor] = []

    def all_gather(tensor: torch.Tensor, group=None) -> list[torch.Tensor]:
        gathered.append(tensor)
        return [tensor, other_rank.counts]

    metric = CodebookUsage(4, dist_sync_fn=all_gather, distributed_available_fn=lambda: True)
    metric.update(torch.tensor([2, 2, 2]))  # rank 0 sees code 2 three times: only the global histogram is 3:1
    out = metric.compute()
    assert len(gathered) == 1 and gathered[0].shape == (1, 4)  # one gather: the histogram is the only state
    _close(out["usage"], 0.5)
    _close(out["perplexity"], PPL_31)
    _close(out["entropy_bits"], BITS_31)
    # compute() restores the local state afterwards, so each rank keeps accumulating its own histogram
    assert metric.counts.tolist() == [[0, 0, 3, 0]]
