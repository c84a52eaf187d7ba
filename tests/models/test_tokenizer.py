"""VideoTokenizer: GAN training steps, EMA, encode/decode, token writing (exact resume: tests/fault_tolerance)."""

import functools
import json

import pytest
import torch
from quiet_trainer import quiet_trainer
from safetensors.torch import load_file
from tiny_tokenizer import RandomClipData, RandomClips, tiny_tokenizer

from lfq_kit.callbacks import TokenWriter
from lfq_kit.quantizers import VQ

trainer = quiet_trainer


def test_training_counts_generator_steps_and_starts_the_gan_at_disc_start(tmp_path):
    model = tiny_tokenizer(disc_start=2, ema_decay=0.9)
    disc_before = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    gen_before = {k: v.clone() for k, v in model.generator.state_dict().items()}
    t = trainer(tmp_path, max_steps=4, limit_val_batches=0)  # 4 optimizer steps = 2 generator steps
    t.fit(model, RandomClipData())
    assert model.global_step == 4 and model.generator_step == 2
    assert model.quantizer.step.item() == 1  # set at the start of the last generator step
    # the discriminator never stepped: disc_start=2 was not reached
    assert all(torch.equal(disc_before[k], v) for k, v in model.discriminator.state_dict().items())
    assert any(not torch.equal(gen_before[k], v) for k, v in model.generator.state_dict().items())

    t = trainer(tmp_path, max_steps=8, limit_val_batches=0)
    t.fit(model, RandomClipData())
    assert model.generator_step == 4
    assert any(not torch.equal(disc_before[k], v) for k, v in model.discriminator.state_dict().items())
    assert "train/discriminator" in t.callback_metrics and "train/lecam" in t.callback_metrics


def test_ema_averages_the_generator_only():
    model = tiny_tokenizer(ema_decay=0.9)
    assert model.ema is not None
    ema_names = {n for n, _ in model.ema.module.named_parameters()}
    assert ema_names == {n for n, _ in model.generator.named_parameters()}
    p = next(model.generator.parameters())
    model._update_ema()  # first update copies
    first = p.detach().clone()
    with torch.no_grad():
        p.add_(1.0)
    model._update_ema()
    assert torch.allclose(next(model.ema.module.parameters()), 0.9 * first + 0.1 * (first + 1.0))
    model.quantizer.set_step(77)
    model._update_ema()
    assert model.ema.module.quantizer.step.item() == 77  # buffers follow the live model


def test_encode_decode_shapes_and_errors():
    model = tiny_tokenizer().eval()
    video = RandomClips(2, frames=5, size=16).videos
    indices = model.encode(video)
    assert indices.shape == (2, 3, 8, 8) and indices.dtype == torch.int64  # 5 frames → 3 latent frames, 2× space
    assert indices.min() >= 0 and indices.max() < 2**6
    recon = model.decode(indices)
    assert recon.shape == video.shape and recon.min() >= -1 and recon.max() <= 1
    image = model.encode(video[:, :, :1])
    assert image.shape == (2, 1, 8, 8)  # an image is a 1-frame video
    with pytest.raises(ValueError, match="uint8"):
        model.encode((video * 127.5 + 127.5).to(torch.uint8))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        model.encode(video * 127.5 + 127.5)
    with pytest.raises(ValueError, match="1 \\+ 2k|T"):
        model.encode(video[:, :, :4])
    with pytest.raises(ValueError, match=r"\[0, 64\)"):
        model.decode(torch.full((1, 3, 8, 8), 64))


def test_quantizer_dim_follows_the_encoder():
    model = tiny_tokenizer(latent=5, quantizer=functools.partial(VQ, codebook_size=16), discriminator=False)
    assert model.quantizer.dim == 5 and model.quantizer.codebook_size == 16
    assert model.steps_per_batch == 1


def test_validation_logs_psnr_ssim_and_codebook_usage(tmp_path):
    model = tiny_tokenizer()
    t = trainer(tmp_path, max_steps=2)
    t.validate(model, RandomClipData())
    m = t.callback_metrics
    keys = (
        "val/psnr_per_frame",
        "val/psnr_pooled",
        "val/ssim",
        "val/reconstruction",
        "val/codebook_usage",
        "val/codebook_perplexity",
        "val/codebook_entropy_bits",
    )
    for key in keys:
        assert key in m and torch.isfinite(m[key]), key
    assert set(m) == set(keys)  # no per-batch quantizer terms: validation computes no quantizer loss
    assert 0 < m["val/codebook_usage"] <= 1


def test_bf16_mixed_training_step(tmp_path):
    model = tiny_tokenizer(disc_start=0)
    t = trainer(tmp_path, max_steps=2, limit_val_batches=0, precision="bf16-mixed")
    t.fit(model, RandomClipData())
    assert torch.isfinite(t.callback_metrics["train/loss"])


def test_predict_writes_token_shards_and_index(tmp_path):
    model = tiny_tokenizer().eval()
    writer = TokenWriter(str(tmp_path / "tokens"), shard_size=4)
    t = trainer(tmp_path, callbacks=[writer])
    t.predict(model, RandomClipData(), return_predictions=False)
    index = json.loads((tmp_path / "tokens" / "index-rank0.json").read_text())
    assert index["num_clips"] == 5 and index["codebook_size"] == 64 and index["grid"] == [3, 8, 8]
    assert [s["num_clips"] for s in index["shards"]] == [4, 1]
    shard = load_file(str(tmp_path / "tokens" / index["shards"][0]["file"]))
    assert shard["indices"].dtype == torch.int32
    clips = RandomClips(5, seed=2)
    assert torch.equal(shard["indices"].long(), model.encode(clips.videos[:4]))
    assert shard["labels"].tolist() == clips.labels[:4].tolist()
    assert index["shards"][0]["video_ids"] == ["clip0", "clip1", "clip2", "clip3"]
