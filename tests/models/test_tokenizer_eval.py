"""VideoTokenizer evaluation: per-frame and pooled PSNR, test/* metrics, the indices-only inference path,
and rebuilding a model built in Python from its checkpoint."""

import functools

import pytest
import torch
from quiet_trainer import quiet_trainer
from tiny_tokenizer import TINY, RandomClipData, RandomClips, tiny_tokenizer

from lfq_kit.backbones import Magvit2Decoder, Magvit2Encoder, StyleGANDiscriminator3d
from lfq_kit.metrics import ReconstructionMetrics
from lfq_kit.models import VideoTokenizer
from lfq_kit.quantizers import VQ

trainer = quiet_trainer


def _psnr(mse: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(4.0 / mse)


def test_per_frame_and_pooled_psnr_known_values():
    metrics = ReconstructionMetrics(codebook_size=4)
    video = torch.rand(2, 3, 2, 16, 16) - 0.5  # two clips of two frames
    offsets = torch.tensor([[0.1, 0.2], [0.4, 0.1]]).view(2, 1, 2, 1, 1)  # per-frame MSE = offset²
    indices = torch.tensor([[0, 1], [1, 1]])
    metrics.update(video[:1] + offsets[:1], video[:1], indices[:1])  # accumulated over batches
    metrics.update(video[1:] + offsets[1:], video[1:], indices[1:])
    mse = offsets.flatten() ** 2
    assert metrics.psnr_per_frame.compute().item() == pytest.approx(_psnr(mse).mean().item(), rel=1e-5)
    assert metrics.psnr_pooled.compute().item() == pytest.approx(_psnr(mse.mean()).item(), rel=1e-5)
    # per frame 26.02, 20.00, 13.98 and 26.02 dB: mean 21.51 dB; pooled MSE 0.055: 18.62 dB
    assert metrics.psnr_per_frame.compute().item() == pytest.approx(21.505, abs=1e-3)
    assert metrics.psnr_pooled.compute().item() == pytest.approx(18.617, abs=1e-3)
    codebook = metrics.codebook()
    assert codebook["codebook_usage"].item() == 0.5 and set(codebook) == {
        "codebook_usage",
        "codebook_perplexity",
        "codebook_entropy_bits",
    }


def test_validation_psnr_is_per_frame_and_pooled_over_the_set_through_forward_codes(tmp_path):
    model = tiny_tokenizer(ema_decay=0.9)
    t = trainer(tmp_path, limit_val_batches=2)
    t.validate(model, RandomClipData(batch_size=2))
    videos = RandomClips(4, seed=1).videos  # RandomClipData's validation clips
    gen = model.inference_generator.eval()
    with torch.no_grad():  # the training path's codes: indices_to_codes must give the same (invariant 8)
        recon = gen.decode_codes(gen.quantizer(gen.encoder(videos)).quantized).clamp(-1, 1)
    frame_mse = (recon - videos).pow(2).mean(dim=(1, 3, 4))  # (B, T)
    m = t.callback_metrics
    assert m["val/psnr_per_frame"].item() == pytest.approx(_psnr(frame_mse).mean().item(), rel=1e-4)
    assert m["val/psnr_pooled"].item() == pytest.approx(_psnr(frame_mse.mean()).item(), rel=1e-4)
    assert m["val/psnr_per_frame"] > m["val/psnr_pooled"]  # Jensen: the names are not swapped


def test_test_stage_logs_under_test(tmp_path):
    model = tiny_tokenizer()
    t = trainer(tmp_path)
    t.test(model, RandomClipData())
    m = t.callback_metrics
    for key in (
        "test/psnr_per_frame",
        "test/psnr_pooled",
        "test/ssim",
        "test/reconstruction",
        "test/codebook_usage",
        "test/codebook_perplexity",
        "test/codebook_entropy_bits",
    ):
        assert key in m and torch.isfinite(m[key]), key
    assert not [k for k in m if not k.startswith("test/")]


def _forbid_forward(monkeypatch, model: VideoTokenizer) -> None:
    def forward(*args, **kwargs):
        raise AssertionError("the quantizer's forward (its training loss) was called")

    for gen in {id(g): g for g in (model.generator, model.inference_generator)}.values():
        monkeypatch.setattr(gen.quantizer, "forward", forward)


@pytest.mark.parametrize("quantizer", [None, functools.partial(VQ, codebook_size=16)], ids=["LFQ", "VQ"])
def test_encode_never_calls_the_quantizer_forward_and_equals_its_indices(monkeypatch, quantizer):
    model = tiny_tokenizer(**({"quantizer": quantizer} if quantizer else {})).eval()
    video = RandomClips(2).videos
    gen = model.inference_generator
    with torch.no_grad():
        expected = gen.quantizer(gen.encoder(video)).indices
    _forbid_forward(monkeypatch, model)
    assert torch.equal(model.encode(video), expected)
    out = model.predict_step({"video": video}, 0)
    assert torch.equal(out["indices"], expected)


def test_validation_never_calls_the_quantizer_forward(monkeypatch, tmp_path):
    model = tiny_tokenizer(ema_decay=None)
    _forbid_forward(monkeypatch, model)
    t = trainer(tmp_path, limit_val_batches=1)
    t.validate(model, RandomClipData())
    assert torch.isfinite(t.callback_metrics["val/psnr_per_frame"])


def _python_built(**kwargs) -> dict:
    """The modules and factories of a model built in Python, as load_from_checkpoint needs them again."""
    return dict(
        encoder=Magvit2Encoder(out_channels=6, **TINY),
        decoder=Magvit2Decoder(in_channels=6, **TINY),
        quantizer=functools.partial(VQ, codebook_size=16),
        discriminator=StyleGANDiscriminator3d(base_channels=8, channel_multipliers=(1, 2)),
        **kwargs,
    )


def test_a_model_built_in_python_is_rebuilt_by_passing_its_modules_again(tmp_path):
    model = VideoTokenizer(**_python_built(disc_start=1, ema_decay=0.9, r1_every=4))
    t = trainer(tmp_path, max_steps=4, limit_val_batches=0)
    t.fit(model, RandomClipData())
    ckpt = tmp_path / "python_built.ckpt"
    t.save_checkpoint(ckpt)
    hparams = torch.load(ckpt, weights_only=True)["hyper_parameters"]
    assert {"encoder", "decoder", "quantizer", "discriminator"}.isdisjoint(hparams)  # modules are not saved

    loaded = VideoTokenizer.load_from_checkpoint(ckpt, **_python_built())  # the supported call
    assert (loaded.hparams.disc_start, loaded.hparams.ema_decay, loaded.hparams.r1_every) == (1, 0.9, 4)
    expected = model.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())
    video = RandomClips(2).videos
    assert torch.equal(loaded.eval().encode(video), model.eval().encode(video))

    with pytest.raises(TypeError, match="encoder"):  # the modules cannot be recovered from the checkpoint
        VideoTokenizer.load_from_checkpoint(ckpt)
    with pytest.raises(RuntimeError, match="discriminator"):  # strict loading names what is missing
        VideoTokenizer.load_from_checkpoint(ckpt, **{**_python_built(), "discriminator": None})
