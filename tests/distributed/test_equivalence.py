"""Two CPU processes under ``strategy=ddp`` (gloo) compute what one process computes (issue 13).

For each model, ``worker.py`` runs a validation pass (and the classifier's multi-view test) on the initial
weights and then one training step, once on 1 process with batch ``2b`` and once on 2 processes with batch
``b`` each, over the same samples (see :mod:`cases`). Expected, within 1e-5:

- training: the mean of the ranks' step losses is the 1-process loss (means over the batch, averaged by DDP's
  gradient all-reduce; LFQ's batch entropy is all-reduced inside the quantizer), and every rank's updated
  weights and buffers (generator, discriminator, weight EMA, VQ EMA codebook, LeCAM EMAs) equal the 1-process
  ones. The step moves the weights by far more than the tolerance, and the two ranks' own losses differ, so a
  missing all-reduce would show.
- evaluation: every logged figure on every rank equals the 1-process figure (not rank 0's share alone), with
  an odd number of videos for the classifier, so an evaluation sampler that pads would count one twice.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("worker.py")
TOL = 1e-5
_cache: dict[str, tuple[dict, list[dict]]] = {}


def _launch(case: str, world: int, out: Path) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(WORKER), case, str(world), str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def runs(case: str, tmp_path_factory) -> tuple[dict, list[dict]]:
    """(the 1-process result, [rank 0's, rank 1's]) of ``case``, both runs at once, once per session."""
    if case not in _cache:
        root = tmp_path_factory.mktemp(case)
        procs = {world: _launch(case, world, root / str(world)) for world in (1, 2)}
        for world, proc in procs.items():
            output, _ = proc.communicate(timeout=240)
            assert proc.returncode == 0, f"{case} on {world} process(es) failed:\n{output[-4000:]}"
        one = torch.load(root / "1" / "rank0.pt")
        _cache[case] = one, [torch.load(root / "2" / f"rank{r}.pt") for r in (0, 1)]
    return _cache[case]


def _differences(one: dict, rank: dict, keys) -> dict[str, float]:
    out = {}
    for key in keys:
        a, b = one[key].double(), rank[key].double()
        err = ((a - b).abs() - TOL * a.abs()).max().item() if a.numel() else 0.0  # atol 1e-5 + rtol 1e-5
        if err > TOL:
            out[key] = err + TOL
    return out


def assert_step_equivalent(case: str, tmp_path_factory, skip: tuple[str, ...] = ()) -> tuple[dict, list[dict]]:
    one, ranks = runs(case, tmp_path_factory)
    keys = [k for k in one["state"] if not any(k.startswith(s) for s in skip)]
    mean_loss = sum(r["train"]["step_loss"] for r in ranks) / 2
    assert mean_loss == pytest.approx(one["train"]["step_loss"], abs=TOL)
    assert abs(ranks[0]["train"]["step_loss"] - ranks[1]["train"]["step_loss"]) > 1e-4  # the ranks saw other clips
    moved = max(
        (one["state"][k].double() - one["initial"][k].double()).abs().max().item()
        for k in keys
        if one["state"][k].is_floating_point() and one["state"][k].numel()
    )
    assert moved > 100 * TOL
    for r, rank in enumerate(ranks):
        assert _differences(one["state"], rank["state"], keys) == {}, f"rank {r}'s weights differ from 1 process"
    return one, ranks


def assert_figures_global(one: dict, ranks: list[dict], names) -> None:
    for r, rank in enumerate(ranks):
        for name in names:
            assert rank[name] == pytest.approx(one[name], rel=TOL, abs=TOL), f"{name} on rank {r} of 2"


# -- training steps ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["tokenizer_lfq", "tokenizer_vq"])
def test_tokenizer_gan_step_equals_one_process(case, tmp_path_factory):
    """Generator and discriminator steps with the GAN active (disc_start 0, R1 and LeCAM on), LFQ or VQ with
    EMA codebook updates; LeCAM's EMAs have their own test."""
    one, ranks = assert_step_equivalent(case, tmp_path_factory, skip=("lecam.",))
    d_loss = sum(r["train"]["train/discriminator"] for r in ranks) / 2
    assert d_loss == pytest.approx(one["train"]["train/discriminator"], abs=TOL)
    # VQ: the EMA codebook moved in the step (its statistics are summed over ranks inside the quantizer)
    if case == "tokenizer_vq":
        key = "generator.quantizer.embed_sum"
        assert (one["state"][key] - one["initial"][key]).abs().max() > 1e-2


def test_lecam_emas_are_global(tmp_path_factory):
    """LeCAM's EMAs of the mean real / fake logits follow the global batch on every rank."""
    one, ranks = runs("tokenizer_lfq", tmp_path_factory)
    keys = ["lecam.ema_real", "lecam.ema_fake"]
    assert all(one["state"][k].abs() > 1e-3 for k in keys)  # they moved (decay 0.5 here)
    for r, rank in enumerate(ranks):
        assert _differences(one["state"], rank["state"], keys) == {}, f"rank {r}'s LeCAM EMAs are its own"


def test_masked_lm_step_equals_one_process(tmp_path_factory):
    """Masks are a function of the sample here (cases.per_sample_cosine_mask), class dropout off; the loss is
    a mean over the masked positions, whose number differs per sample."""
    assert_step_equivalent("mlm", tmp_path_factory)


def test_masked_lm_step_with_weighted_positions_equals_one_process(tmp_path_factory):
    """MAGVIT's weighted positions (recons weight 0.1) with per-token normalization: each rank's weight total
    differs; MaskGIT's input LayerNorm and head transform on."""
    assert_step_equivalent("mlm_weighted", tmp_path_factory)


def test_videomae_step_equals_one_process(tmp_path_factory):
    """Tube masks per sample (cases.per_sample_tube_mask); every sample masks the same count (invariant 19)."""
    assert_step_equivalent("videomae", tmp_path_factory)


def test_classifier_step_equals_one_process(tmp_path_factory):
    """Mixup/CutMix off: they pair samples within each rank's batch, which no 2-rank run can reproduce."""
    assert_step_equivalent("classifier", tmp_path_factory)


# -- evaluation --------------------------------------------------------------------------------------------

TOKENIZER_VAL = [
    "val/psnr_per_frame",
    "val/psnr_pooled",
    "val/ssim",
    "val/reconstruction",
    "val/codebook_usage",
    "val/codebook_perplexity",
    "val/codebook_entropy_bits",
]


@pytest.mark.parametrize("case", ["tokenizer_lfq", "tokenizer_vq"])
def test_tokenizer_validation_figures_are_global(case, tmp_path_factory):
    one, ranks = runs(case, tmp_path_factory)
    assert sorted(one["val"]) == sorted(TOKENIZER_VAL)
    assert_figures_global(one["val"], [r["val"] for r in ranks], TOKENIZER_VAL)


def test_tokenizer_validation_logs_without_sync_dist_warnings(tmp_path_factory):
    """Lightning warns on rank 0 for every epoch-level figure logged without ``sync_dist`` under DDP."""
    _, ranks = runs("tokenizer_lfq", tmp_path_factory)
    assert [w for w in ranks[0]["warnings"] if "sync_dist" in w] == []


def test_masked_lm_validation_figures_are_global(tmp_path_factory):
    one, ranks = runs("mlm", tmp_path_factory)
    names = ["val/bits_per_token", "val/bits_per_token_0_5", "val/bits_per_token_0_75", "val/bits_per_token_0_9"]
    assert_figures_global(one["val"], [r["val"] for r in ranks], names)


def test_videomae_validation_loss_is_global(tmp_path_factory):
    one, ranks = runs("videomae", tmp_path_factory)
    assert_figures_global(one["val"], [r["val"] for r in ranks], ["val/loss"])


def test_classifier_counts_each_of_an_odd_number_of_videos_once(tmp_path_factory):
    one, ranks = runs("classifier", tmp_path_factory)
    assert one["test"]["test/videos"] == 5.0
    assert_figures_global(one["test"], [r["test"] for r in ranks], ["test/top1", "test/top5", "test/videos"])
    assert_figures_global(one["val"], [r["val"] for r in ranks], ["val/top1"])


def test_classifier_validation_loss_is_global(tmp_path_factory):
    """Unpadded shards differ in size (3 and 2 videos): the figure must be weighted by samples, not ranks."""
    one, ranks = runs("classifier", tmp_path_factory)
    assert_figures_global(one["val"], [r["val"] for r in ranks], ["val/loss"])
