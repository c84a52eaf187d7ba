"""Under torch.distributed the LFQ batch entropy is that of the global batch, with the right gradient.

Two gloo processes on CPU; the entropy of each rank equals one process over the concatenated batch.
"""

import math
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lfq_kit.quantizers import LFQ
from lfq_kit.quantizers.entropy import exact_code_entropy, grouped_code_entropy

WORLD = 2


def _worker(rank: int, init_file: str, logits: torch.Tensor, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            local = logits.chunk(WORLD)[rank].clone().requires_grad_()
            exact = exact_code_entropy(local)
            exact.backward()
            grouped_input = local.detach().clone().requires_grad_()
            grouped = grouped_code_entropy(grouped_input, 3)
            grouped.backward()
            # Two corners, one per rank: the global batch entropy is ln 2, each rank alone would see 0.
            corner = torch.full((1, 6, 8), 1.0 if rank == 0 else -1.0)
            batch = LFQ(6)(corner).metrics["batch_entropy"]
            # Evaluation shards are uneven: a no-grad forward that only rank 1 runs must not wait for rank 0
            # (it would hang with a collective), and its entropy is its own batch's (one corner: 0).
            alone = None
            if rank == 1:
                with torch.no_grad():
                    alone = LFQ(6)(corner).metrics["batch_entropy"]
        deprecations = [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))]
        results[rank] = (exact.detach(), local.grad, grouped.detach(), grouped_input.grad, batch, alone, deprecations)
    finally:
        dist.destroy_process_group()


def test_batch_entropy_is_all_reduced_with_gradient(tmp_path):
    logits = torch.randn(24, 7) * 2
    results = mp.Manager().dict()
    mp.spawn(_worker, args=(str(tmp_path / "init"), logits, results), nprocs=WORLD, join=True)

    full = logits.clone().requires_grad_()
    expected = exact_code_entropy(full)
    expected.backward()
    full_grouped = logits.clone().requires_grad_()
    expected_grouped = grouped_code_entropy(full_grouped, 3)
    expected_grouped.backward()
    for rank in range(WORLD):
        exact, grad, grouped, grouped_grad, batch, alone, deprecations = results[rank]
        if rank == 1:
            assert alone.item() == pytest.approx(0.0, abs=1e-6)
        assert exact.item() == pytest.approx(expected.item(), abs=1e-5)
        assert grouped.item() == pytest.approx(expected_grouped.item(), abs=1e-5)
        assert batch.item() == pytest.approx(math.log(2), abs=1e-5)
        # all_reduce's backward sums over ranks; DDP then averages, giving the global gradient
        assert torch.allclose(grad, WORLD * full.grad.chunk(WORLD)[rank], atol=1e-5)
        assert torch.allclose(grouped_grad, WORLD * full_grouped.grad.chunk(WORLD)[rank], atol=1e-5)
        # torch.distributed.nn.functional.all_reduce is deprecated in torch 2.14 (a FutureWarning per call)
        assert deprecations == []
