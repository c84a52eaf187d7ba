"""Evaluation figures across ranks (issue 13): every per-batch figure the tokenizer and the masked LM log in
validation goes through a torchmetrics state or ``sync_dist``, so Lightning raises no "sync_dist" warning under a
process group, and the values are the whole set's."""

import warnings

import lightning as L
import pytest
import torch
import torch.distributed as dist
from process_group import process_group  # noqa: F401  (fixture)
from random_tokens import RandomValTokens
from tiny_tokenizer import RandomClipData, RandomClips, tiny_tokenizer

from lfq_kit.backbones.transformer import TransformerTiny
from lfq_kit.models.masked_lm import MaskedLM


def _validate(tmp_path, model, data) -> tuple[dict, list[str]]:
    t = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t.validate(model, data, verbose=False)
    return t.callback_metrics, [str(w.message) for w in caught if "sync_dist" in str(w.message)]


def test_tokenizer_validation_logs_no_unsynced_figure_and_pools_the_mse(tmp_path, process_group):  # noqa: F811
    assert dist.is_initialized()
    model = tiny_tokenizer(ema_decay=0.9)
    metrics, complaints = _validate(tmp_path, model, RandomClipData())
    assert complaints == []
    videos = RandomClips(4, seed=1).videos  # RandomClipData's validation set, 2 batches
    gen = model.inference_generator.eval()
    with torch.no_grad():
        recon = gen.decode_indices(gen.encode_indices(videos)).clamp(-1, 1)
    assert metrics["val/reconstruction"].item() == pytest.approx(torch.mean((recon - videos) ** 2).item(), rel=1e-5)
    assert 0 < metrics["val/codebook_usage"] <= 1


def test_masked_lm_validation_logs_no_unsynced_figure(tmp_path, process_group):  # noqa: F811
    torch.manual_seed(0)
    model = MaskedLM(TransformerTiny(), grid=(2, 2, 4), codebook_size=2**18, num_classes=0, val_mask_ratios=(0.5, 1.0))
    metrics, complaints = _validate(tmp_path, model, RandomValTokens(count=6, batch_size=4))
    assert complaints == []
    per_ratio = [metrics["val/bits_per_token_0_5"], metrics["val/bits_per_token_1"]]
    assert metrics["val/bits_per_token"].item() == pytest.approx(torch.stack(per_ratio).mean().item(), rel=1e-6)
    assert 15 < per_ratio[1].item() < 21  # about log2 K = 18 bits at initialization
