"""VQ: contract, nearest-code lookup, losses, EMA updates, dead-code restarts, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from lfq_kit.quantizers import VQ
from lfq_kit.registry import QUANTIZERS

CONFIGS = {
    "plain": dict(),
    "projection": dict(codebook_dim=3),
    "l2": dict(use_l2_norm=True),
    "ema_dead": dict(ema_update=True, dead_code_threshold=0.5),
}


def _flat(z: torch.Tensor) -> torch.Tensor:
    """(B, C, *S) → (N, C) in the quantizer's token order."""
    return z.movedim(1, -1).reshape(-1, z.shape[1])


def test_registered():
    assert QUANTIZERS.get("VQ") is VQ


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_shapes_dtypes_and_metrics(config, dtype):
    torch.manual_seed(0)
    vq = VQ(dim=6, codebook_size=32, **CONFIGS[config])
    z = torch.randn(2, 6, 3, 5).to(dtype)
    out = vq(z)
    assert out.quantized.shape == (2, 6, 3, 5)
    assert out.quantized.dtype == dtype
    assert out.indices.shape == (2, 3, 5)
    assert out.indices.dtype == torch.int64
    assert 0 <= int(out.indices.min()) and int(out.indices.max()) < 32
    assert out.loss.shape == () and out.loss.dtype == torch.float32 and torch.isfinite(out.loss)
    expected_keys = {"commitment"} | ({"codebook"} if "ema" not in config else {"dead_codes"})
    assert set(out.metrics) == expected_keys
    for value in out.metrics.values():
        assert value.shape == () and value.dtype == torch.float32 and not value.requires_grad


@pytest.mark.parametrize("config", ["plain", "projection", "l2"])
def test_low_precision_indices_equal_fp32_indices(config):
    torch.manual_seed(1)
    vq = VQ(dim=6, codebook_size=64, **CONFIGS[config]).eval()
    z = torch.randn(4, 6, 8).bfloat16()
    reference = vq(z.float()).indices
    assert torch.equal(vq(z).indices, reference)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vq(z.float())
    assert torch.equal(out.indices, reference)
    assert out.quantized.dtype == torch.float32


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_eval_quantized_equals_indices_to_codes_exactly(config, dtype):
    torch.manual_seed(2)
    vq = VQ(dim=6, codebook_size=32, **CONFIGS[config])
    vq(torch.randn(4, 6, 7))  # one training step, so EMA / restarts have touched the codebook
    vq.eval()
    out = vq(torch.randn(3, 6, 4, 4).to(dtype))
    codes = vq.indices_to_codes(out.indices)
    assert codes.shape == out.quantized.shape
    assert torch.equal(codes.to(dtype), out.quantized)


def test_picks_true_nearest_code():
    torch.manual_seed(3)
    vq = VQ(dim=8, codebook_size=300).eval()
    z = torch.randn(4, 8, 9, 7) * 1.5
    out = vq(z)
    codebook = vq.codebook.detach().double()
    distances = torch.cdist(_flat(z).double(), codebook, compute_mode="donot_use_mm_for_euclid_dist")
    assert torch.equal(out.indices.reshape(-1), distances.argmin(-1))
    # The output is that code itself.
    assert torch.equal(_flat(out.quantized), vq.codebook.detach()[distances.argmin(-1)])


def test_l2_norm_picks_largest_cosine_and_returns_unit_codes():
    torch.manual_seed(4)
    vq = VQ(dim=5, codebook_size=100, use_l2_norm=True).eval()
    z = torch.randn(3, 5, 20) * 7.0
    out = vq(z)
    cosine = F.normalize(_flat(z).double(), dim=-1) @ F.normalize(vq.codebook.detach().double(), dim=-1).T
    assert torch.equal(out.indices.reshape(-1), cosine.argmax(-1))
    torch.testing.assert_close(out.quantized.norm(dim=1), torch.ones(3, 20), rtol=0, atol=1e-6)


def test_losses_have_expected_values():
    torch.manual_seed(5)
    vq = VQ(dim=4, codebook_size=16, commitment_weight=0.3, codebook_weight=0.7)
    z = torch.randn(2, 4, 10)
    out = vq(z)
    q = vq.codebook.detach()[out.indices.reshape(-1)]
    mse = (_flat(z) - q).pow(2).mean()
    torch.testing.assert_close(out.metrics["commitment"], mse)
    torch.testing.assert_close(out.metrics["codebook"], mse)
    torch.testing.assert_close(out.loss, 0.3 * mse + 0.7 * mse)


def test_gradients_reach_input_codebook_and_projections():
    torch.manual_seed(6)
    vq = VQ(dim=6, codebook_size=16, codebook_dim=3)
    z = torch.randn(2, 6, 5, requires_grad=True)
    out = vq(z)
    (out.quantized.pow(2).sum() + out.loss).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    used = torch.zeros(16, dtype=torch.bool)
    used[out.indices.reshape(-1)] = True
    row_grad = vq.codebook.grad.abs().sum(-1)
    assert (row_grad[used] > 0).all() and (row_grad[~used] == 0).all()  # only the codebook loss reaches it
    assert vq.project_in.weight.grad.abs().sum() > 0
    assert vq.project_out.weight.grad.abs().sum() > 0


def test_straight_through_gradient_is_identity_without_projection():
    vq = VQ(dim=4, codebook_size=8)
    z = torch.randn(2, 4, 3, requires_grad=True)
    vq(z).quantized.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))
    assert vq.codebook.grad is None  # the reconstruction path does not train the codebook


def test_ema_moves_code_toward_assigned_batch_mean_by_expected_amount():
    vq = VQ(dim=2, codebook_size=3, ema_update=True, ema_decay=0.9, ema_epsilon=0.0)
    assert "codebook" not in dict(vq.named_parameters())
    start = torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 10.0]])
    vq.codebook.copy_(start)
    vq.embed_sum.copy_(start)
    # Four vectors near code 0 (mean (1, -0.5)), one near code 1.
    vectors = torch.tensor([[1.0, 0.0], [2.0, -1.0], [0.5, -0.5], [0.5, -0.5], [9.0, 11.0]])
    out = vq(vectors.T.unsqueeze(0))  # (1, 2, 5)
    assert out.indices.tolist() == [[0, 0, 0, 0, 1]]
    mean0 = torch.tensor([1.0, -0.5])
    # N ← 0.9·1 + 0.1·n, S ← 0.9·e + 0.1·Σx, e = S / N.
    expected0 = (0.9 * start[0] + 0.1 * 4 * mean0) / (0.9 + 0.1 * 4)
    expected1 = (0.9 * start[1] + 0.1 * torch.tensor([9.0, 11.0])) / (0.9 + 0.1)
    torch.testing.assert_close(vq.codebook[0], expected0)
    torch.testing.assert_close(vq.codebook[1], expected1)
    torch.testing.assert_close(vq.codebook[2], start[2])  # unused: S and N decay together
    torch.testing.assert_close(vq.cluster_size, torch.tensor([1.3, 1.0, 0.9]))
    assert "codebook" not in out.metrics


def test_ema_laplace_smoothing():
    vq = VQ(dim=1, codebook_size=2, ema_update=True, ema_decay=0.5, ema_epsilon=0.1)
    vq.codebook.copy_(torch.tensor([[0.0], [5.0]]))
    vq.embed_sum.copy_(vq.codebook)
    vq(torch.tensor([[[1.0, 1.0, 1.0]]]))  # three tokens on code 0
    n = torch.tensor([0.5 + 0.5 * 3, 0.5])  # EMA cluster sizes
    smoothed = (n + 0.1) / (n.sum() + 2 * 0.1) * n.sum()
    expected = torch.tensor([(0.5 * 0.0 + 0.5 * 3.0), 0.5 * 5.0]) / smoothed
    torch.testing.assert_close(vq.codebook[:, 0], expected)


def test_eval_mode_changes_no_state():
    vq = VQ(dim=3, codebook_size=8, ema_update=True, dead_code_threshold=2.0).eval()
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    out = vq(torch.randn(2, 3, 10))
    assert out.metrics["dead_codes"] == 8  # all usages start at 1 < 2; counted, not restarted
    for key, value in vq.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_dead_code_restart_replaces_unused_code_with_batch_vector():
    torch.manual_seed(7)
    vq = VQ(dim=2, codebook_size=4, ema_decay=0.5, dead_code_threshold=0.3)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 3.0], [100.0, 100.0]]))
    centers = vq.codebook.detach()[:3].clone()
    dead_counts = []
    for _ in range(3):
        # 60 tokens around the first three codes; code 3 is far away and never chosen.
        z = (centers.repeat(20, 1) + 0.1 * torch.randn(60, 2)).T.unsqueeze(0)
        out = vq(z)
        dead_counts.append(int(out.metrics["dead_codes"]))
    # Usage of code 3: 1 → 0.5 → 0.25 (below 0.3) → restarted at the third forward.
    assert dead_counts == [0, 0, 1]
    batch = _flat(z)
    assert (batch == vq.codebook.detach()[3]).all(-1).any(), "code 3 must now be a vector of the batch"
    torch.testing.assert_close(vq.codebook.detach()[:3], centers)  # live codes untouched
    assert vq.cluster_size[3] >= 0.5  # usage reset to 1, then one EMA step with at least its own vector
    assert out.indices.max() == 3  # the restarted code is immediately used by its source vector


def test_dead_code_restart_with_ema_resets_state_consistently():
    torch.manual_seed(8)
    vq = VQ(dim=2, codebook_size=3, ema_update=True, ema_decay=0.9, ema_epsilon=0.0, dead_code_threshold=2.0)
    with torch.no_grad():
        vq.cluster_size.copy_(torch.tensor([5.0, 5.0, 0.5]))  # only code 2 is dead
    z = torch.randn(1, 2, 16)
    out = vq(z)
    assert int(out.metrics["dead_codes"]) == 1
    batch = _flat(z)
    # After the restart code 2 is a batch vector v with N = 2, S = 2v; the EMA step then moves it to the
    # mean of what it attracts, so it stays a convex combination of batch vectors: inside their box.
    assert (vq.codebook[2] >= batch.min(0).values - 1e-6).all()
    assert (vq.codebook[2] <= batch.max(0).values + 1e-6).all()
    n2 = int((out.indices == 2).sum())
    torch.testing.assert_close(vq.cluster_size[2], torch.tensor(0.9 * 2.0 + 0.1 * n2))


def test_no_restart_when_threshold_is_zero():
    vq = VQ(dim=2, codebook_size=4, ema_decay=0.0)
    with torch.no_grad():
        vq.codebook[3] = 100.0
    for _ in range(3):
        out = vq(torch.randn(1, 2, 8))
    assert "dead_codes" not in out.metrics
    assert (vq.codebook.detach()[3] == 100.0).all()


def test_state_dict_resume_is_exact():
    torch.manual_seed(9)
    a = VQ(dim=4, codebook_size=8, ema_update=True, dead_code_threshold=0.8)
    for _ in range(3):
        a(torch.randn(2, 4, 6))
    b = VQ(dim=4, codebook_size=8, ema_update=True, dead_code_threshold=0.8)
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"step", "codebook", "embed_sum", "cluster_size"}
    z = torch.randn(2, 4, 6)
    torch.manual_seed(10)
    out_a = a(z)
    torch.manual_seed(10)
    out_b = b(z)
    assert torch.equal(out_a.quantized, out_b.quantized)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_rejects_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="ema_decay"):
        VQ(dim=4, ema_decay=1.0)
    with pytest.raises(ValueError, match=">= 1"):
        VQ(dim=4, codebook_size=0)
    with pytest.raises(ValueError, match=r"\(B, 4, \*S\)"):
        VQ(dim=4)(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="floating-point"):
        VQ(dim=4)(torch.ones(2, 4, 3, dtype=torch.long))


WORLD = 2


def _distributed_worker(rank: int, init_file: str, state: dict, z: torch.Tensor, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        local = z.chunk(WORLD, dim=2)[rank]
        ema = VQ(dim=3, codebook_size=6, ema_update=True, ema_decay=0.8)
        ema.load_state_dict(state)
        ema(local)
        restart = VQ(dim=3, codebook_size=6, dead_code_threshold=0.5)
        with torch.no_grad():
            restart.codebook.copy_(state["codebook"])
            restart.cluster_size[4] = 0.1  # code 4 is dead
        torch.manual_seed(rank)  # different candidates per rank: rank 0's must win everywhere
        restart(local)
        results[rank] = (ema.codebook.clone(), ema.cluster_size.clone(), restart.codebook.detach().clone())
    finally:
        dist.destroy_process_group()


def test_distributed_ema_uses_global_batch_and_restarts_agree(tmp_path):
    reference = VQ(dim=3, codebook_size=6, ema_update=True, ema_decay=0.8)
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    z = torch.randn(1, 3, 40)
    results = mp.Manager().dict()
    mp.spawn(_distributed_worker, args=(str(tmp_path / "init"), state, z, results), nprocs=WORLD, join=True)
    reference(z)  # one process, the whole batch
    for rank in range(WORLD):
        codebook, cluster_size, restarted = results[rank]
        torch.testing.assert_close(codebook, reference.codebook)
        torch.testing.assert_close(cluster_size, reference.cluster_size)
    assert torch.equal(results[0][2], results[1][2])  # identical codebooks on every rank
    rank0_batch = _flat(z.chunk(WORLD, dim=2)[0])
    assert (rank0_batch == results[0][2][4]).all(-1).any()
    torch.testing.assert_close(results[0][2][:4], state["codebook"][:4])
