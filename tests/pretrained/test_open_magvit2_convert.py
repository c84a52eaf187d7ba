"""``lfq-kit convert open-magvit2`` on tiny ``.ckpt`` files laid out as SEED-Voken writes them (built here from the
reference fixture's tensors): EMA and trained weights, the converted checkpoint as a frozen tokenizer under the masked
LM, an architecture config, and every kind of bad input (a clear error naming the file and keys, no output file)."""

from pathlib import Path

import pytest
import torch
from open_magvit2_files import ckpt_payload, ema_name, fixture, fixture_state, write_ckpt

from lfq_kit.cli import LfqKitCLI, main
from lfq_kit.models import FrozenTokenizer, MaskedLM, VideoTokenizer
from lfq_kit.pretrained.open_magvit2_layout import OpenMagvit2Architecture

ROOT = Path(__file__).resolve().parents[2]
TINY_IMAGE = OpenMagvit2Architecture(False, 32, (1, 2), 1, 18)  # the image fixture's ddconfig


class PickledConfig:
    """Stands for the OmegaConf objects a Lightning ``.ckpt``'s ``hyper_parameters`` may hold."""

    def __init__(self, ch: int) -> None:
        self.ch = ch


def _convert(*args: str) -> int:
    try:
        return main(["convert", "open-magvit2", *map(str, args)])
    except SystemExit as exit_:
        if isinstance(exit_.code, str):
            raise ConversionFailed(exit_.code) from None
        return exit_.code or 0


class ConversionFailed(Exception):
    pass


@pytest.fixture(scope="module")
def image_ckpts(tmp_path_factory):
    """The image fixture as a released file: its weights as the EMA copy, other (trained) weights beside them."""
    folder = tmp_path_factory.mktemp("om2")
    state = fixture_state("image")
    trained = {k: v + 0.05 * torch.randn_like(v.float()).half() for k, v in state.items()}
    return {
        "ema": write_ckpt(folder / "imagenet_ema.ckpt", trained, ema=state),
        "plain": write_ckpt(folder / "imagenet_plain.ckpt", state),
    }


def _fixture_outputs(model: VideoTokenizer):
    ref = fixture("image")
    gen = model.inference_generator
    with torch.no_grad():
        out = gen.quantizer(gen.encoder(ref["img.input"].float().unsqueeze(2)))
        return out.indices[:, 0], gen.decoder(out.quantized)[:, :, 0], ref


@pytest.mark.parametrize("which", ["ema", "plain"])
def test_the_command_converts_a_ckpt_that_load_from_checkpoint_rebuilds(image_ckpts, which, tmp_path, capsys):
    out = tmp_path / "runs" / "om2.ckpt"
    assert _convert(image_ckpts[which], "--output", out) == 0
    printed = capsys.readouterr()
    assert "reading" in printed.err
    assert ("EMA weights" if which == "ema" else "the file has no EMA copy") in printed.out
    assert "2 loss.* tensors (discriminator, LPIPS) ignored" in printed.out and f"wrote {out}" in printed.out
    model = VideoTokenizer.load_from_checkpoint(out, map_location="cpu")  # nothing passed: rebuilt from its config
    indices, output, ref = _fixture_outputs(model)
    assert torch.equal(indices, ref["img.fp32.indices"])
    assert (output - ref["img.fp32.output"]).abs().max() <= 1e-4 * ref["img.fp32.output"].abs().max()


def test_a_video_ckpt_converts_into_the_non_causal_open_magvit2_video_tokenizer(tmp_path):
    state = fixture_state("video")
    out = tmp_path / "video.ckpt"
    assert _convert(write_ckpt(tmp_path / "video_128.ckpt", state, ema=state), "--output", out) == 0
    frozen = FrozenTokenizer(out)  # as `tokenizer:` and `lfq-kit compress --tokenizer` load it
    assert frozen.model.encoder.clip_wide_norm and frozen.model.decoder.keep_first_subframe
    ref = fixture("video")
    indices = frozen.encode(ref["clip.input"].float())
    assert torch.equal(indices, ref["clip.fp32.indices"])
    output = frozen.model.inference_generator.decode_indices(indices)
    assert (output - ref["clip.fp32.output"]).abs().max() <= 1e-4 * ref["clip.fp32.output"].abs().max()


def test_no_ema_takes_the_trained_weights(image_ckpts, tmp_path):
    out = tmp_path / "trained.ckpt"
    assert _convert(image_ckpts["ema"], "--output", out, "--no-ema") == 0
    converted = VideoTokenizer.load_from_checkpoint(out, map_location="cpu").generator.encoder.conv_in.weight
    trained = torch.load(image_ckpts["ema"], weights_only=True)["state_dict"]["encoder.conv_in.weight"]
    torch.testing.assert_close(converted, trained.float(), rtol=0, atol=0)


def test_the_converted_tokenizer_is_frozen_under_the_masked_lm_and_trains_a_step(image_ckpts, tmp_path, monkeypatch):
    import dataset_trees

    out = tmp_path / "om2.ckpt"
    assert _convert(image_ckpts["ema"], "--output", out) == 0
    frozen = FrozenTokenizer(out)
    assert (frozen.codebook_size, frozen.token_grid(1, 16, 16)) == (2**18, (1, 8, 8))
    ref = fixture("image")
    assert torch.equal(frozen.encode(ref["img.input"].float().unsqueeze(2))[:, 0], ref["img.fp32.indices"])
    images = dataset_trees.build_image_folder(tmp_path / "imagenet")
    monkeypatch.chdir(tmp_path)
    cli = LfqKitCLI(
        args=[
            "-c",
            str(ROOT / "configs" / "imagenet_mlm.yaml"),
            f"--model.init_args.tokenizer={out}",
            "--model.init_args.clip_size=[1, 16, 16]",
            "--model.init_args.grid=[1, 8, 8]",
            "--model.init_args.backbone=TransformerTiny",
            f"--data.init_args.root={images.root}",
            "--data.init_args.resolution=16",
            "--data.init_args.batch_size=2",
            "--data.init_args.num_workers=0",
            "--trainer.max_steps=1",
            "--trainer.accelerator=cpu",
            "--trainer.devices=1",
            "--trainer.strategy=auto",
            "--trainer.precision=32",
            "--trainer.limit_val_batches=0",
            "--trainer.max_time=null",
            "--trainer.enable_progress_bar=false",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ],
        run=False,
    )
    assert isinstance(cli.model, MaskedLM) and cli.model.frozen_tokenizer.hash == frozen.hash
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.model.global_step == 1


def test_an_architecture_config_is_used_and_checked_against_the_weights(image_ckpts, tmp_path):
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": TINY_IMAGE.model_config()}))
    assert _convert(image_ckpts["plain"], "--output", tmp_path / "ok.ckpt", "--config", config) == 0
    released = ROOT / "configs" / "pretrained" / "open_magvit2_imagenet_128.yaml"
    out = tmp_path / "bad.ckpt"
    with pytest.raises(ConversionFailed) as err:
        _convert(image_ckpts["plain"], "--output", out, "--config", released)
    message = str(err.value)
    assert str(released) in message and str(image_ckpts["plain"]) in message
    assert "encoder.base_channels: 128 in the config, 32 for these weights" in message
    assert "channel_multipliers: [1, 2, 2, 4] in the config, [1, 2] for these weights" in message
    with pytest.raises(ConversionFailed, match="builds a lfq_kit.models.MaskedLM, not a lfq_kit.models.VideoTokenizer"):
        _convert(image_ckpts["plain"], "--output", out, "--config", ROOT / "configs" / "imagenet_mlm.yaml")
    assert not out.exists()


def _bad(tmp_path: Path, name: str, payload: dict) -> Path:
    path = tmp_path / name
    torch.save(payload, path)
    return path


def _broken_files(tmp_path: Path, good: Path) -> dict[str, tuple[Path, list[str]]]:
    """name → (file, what the error must say)."""
    state = fixture_state("image")
    missing = {k: v for k, v in state.items() if k != "decoder.up.1.block.0.conv2.weight"}
    shape = {**state, "decoder.conv_out.weight": torch.zeros(3, 16, 3, 3)}
    ibq = {**state, "quantize.embedding.weight": torch.zeros(16, 18)}  # a codebook: not an LFQ tokenizer
    videomae = {"patch_embed.proj.weight": torch.zeros(8, 3, 2, 4, 4), "blocks.0.norm1.weight": torch.zeros(8)}
    ema_gap = ckpt_payload(state, ema=state)
    del ema_gap["state_dict"][ema_name("encoder.norm_out.bias")]
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    return {
        "missing key": (
            _bad(tmp_path, "missing.ckpt", ckpt_payload(missing)),
            ["missing: decoder.up.1.block.0.conv2.weight"],
        ),
        "shape": (
            _bad(tmp_path, "shape.ckpt", ckpt_payload(shape)),
            ["decoder.conv_out.weight (3, 16, 3, 3) vs (3, 32, 3, 3)"],
        ),
        "unknown keys": (
            _bad(tmp_path, "ibq.ckpt", ckpt_payload(ibq)),
            ["matches no known Open-MAGVIT2", "quantize.embedding.weight"],
        ),
        "unknown layout": (
            _bad(tmp_path, "videomae.ckpt", {"model": videomae}),
            ["matches no known Open-MAGVIT2", "blocks.0.norm1.weight, patch_embed.proj.weight"],
        ),
        "EMA gap": (_bad(tmp_path, "ema_gap.ckpt", ema_gap), ["model_ema.encodernorm_outbias", "--no-ema"]),
        "truncated": (truncated, ["not a readable PyTorch checkpoint (truncated?)"]),
        "pickled class": (
            _bad(tmp_path, "pickled.ckpt", ckpt_payload(state, hyper_parameters=PickledConfig(32))),
            ["PickledConfig", "--trust-pickle"],
        ),
    }


def test_bad_files_are_refused_with_the_file_and_keys_named_and_nothing_written(image_ckpts, tmp_path):
    for case, (path, says) in _broken_files(tmp_path, image_ckpts["plain"]).items():
        out = tmp_path / "out" / f"{path.stem}.ckpt"
        with pytest.raises(ConversionFailed) as err:
            _convert(path, "--output", out)
        message = str(err.value)
        assert message.startswith("lfq-kit convert open-magvit2: ") and str(path) in message, (case, message)
        for words in says:
            assert words in message, (case, message)
        assert not out.exists() and not any(out.parent.glob("*")), case


def test_trust_pickle_accepts_a_pickled_class_that_is_otherwise_refused(tmp_path):
    path = _bad(tmp_path, "pickled.ckpt", ckpt_payload(fixture_state("image"), hyper_parameters=PickledConfig(32)))
    assert _convert(path, "--output", tmp_path / "ok.ckpt", "--trust-pickle") == 0
    assert (tmp_path / "ok.ckpt").is_file()


def test_the_command_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["convert", "open-magvit2", "--help"])
    assert exit_.value.code == 0 and "--no-ema" in capsys.readouterr().out
