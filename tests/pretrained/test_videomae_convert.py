"""`lfq-kit convert videomae` on tiny files: MCG-NJU `.pth` (pretraining, fine-tuned; containers and a DDP
prefix), transformers folders (safetensors, pytorch_model.bin, transformers-5 bias names); the converted checkpoint
feeds `VideoClassifier(pretrained: ...)` and trains a step; bad input is refused naming the file and the keys, and
leaves no output file."""

import argparse

import pytest
import torch
from tiny_videomae import CLASSIFICATION, PRETRAINING, fixture, hf_state, random_mcg_state, write_transformers_folder

from lfq_kit.backbones import VideoViT
from lfq_kit.cli import main
from lfq_kit.models import VideoClassifier, VideoMAEPretraining
from lfq_kit.pretrained.checkpoint_files import LayoutError
from lfq_kit.pretrained.videomae import convert_videomae


def _cli(*args: str) -> int:
    try:
        return main(["convert", "videomae", *map(str, args)])
    except SystemExit as exit_:
        raise LayoutError(str(exit_.code)) from None  # the command's message, for matching


def test_an_mcg_nju_pretraining_pth_converts_and_fine_tunes_a_step(tmp_path, capsys):
    torch.save({"model": random_mcg_state(pretraining=True), "optimizer": {}, "epoch": 799}, tmp_path / "ckpt.pth")
    assert _cli(tmp_path / "ckpt.pth", "--output", tmp_path / "vit_s.ckpt") == 0
    out = capsys.readouterr().out
    assert "MCG-NJU VideoMAE pretraining .pth, ViT 1 x 384, 6 heads, clip 16 x 224 x 224" in out
    assert "not in the file: heads 6 (MCG-NJU's for width 384), clip 16 x 224 x 224" in out and "pixel loss" in out
    pre = VideoMAEPretraining.load_from_checkpoint(tmp_path / "vit_s.ckpt")  # continues pretraining from here
    assert pre.target == "pixels" and pre.decoder.dim == 192 and pre.decoder.blocks[0].attn.num_heads == 3
    backbone = VideoViT(dim=384, depth=1, num_heads=6, drop_path=0.1, norm_eps=1e-6, final_norm=False)
    model = VideoClassifier(
        backbone,
        num_classes=3,
        pretrained=str(tmp_path / "vit_s.ckpt"),
        skip_keys=["norm.weight", "norm.bias"],
        pooling="fc_norm",
        init_scale=0.001,
    )
    encoder = {k: v for k, v in pre.encoder.state_dict().items() if not k.startswith("norm.")}  # fc_norm starts fresh
    assert sorted(model.load_pretrained()) == sorted(encoder) == sorted(model.backbone.state_dict())
    assert all(torch.equal(model.backbone.state_dict()[k], v) for k, v in encoder.items())
    assert float(model.head.weight.abs().max()) < 0.002 * 0.02 * 2 + 1e-12  # trunc-normal 0.02 (|x| <= 2 std) x 0.001
    optimizer = model.configure_optimizers()["optimizer"]
    gen = torch.Generator().manual_seed(1)
    batch = {"video": torch.rand((2, 3, 16, 224, 224), generator=gen) * 2 - 1, "label": torch.tensor([0, 2])}
    before = model.backbone.blocks[0].mlp.fc1.weight.detach().clone()
    loss = model.training_step(batch, 0)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.backbone.blocks[0].mlp.fc1.weight)


@pytest.mark.parametrize("container", ["model", "module", "bare", "ddp-prefix"])
def test_an_mcg_nju_fine_tuned_pth_gives_the_classifier(tmp_path, container):
    state = random_mcg_state(pretraining=False, num_classes=4)
    if container == "ddp-prefix":
        stored = {"model": {f"module.{k}": v for k, v in state.items()}}
    else:
        stored = state if container == "bare" else {container: state}
    torch.save(stored, tmp_path / "ft.pth")
    result = convert_videomae(tmp_path / "ft.pth", tmp_path / "ft.ckpt")
    model = VideoClassifier.load_from_checkpoint(result.output)
    assert result.source_format.startswith("MCG-NJU VideoMAE fine-tuned .pth, ViT 1 x 384, 6 heads")
    assert model.num_classes == 4 and model.hparams.pooling == "fc_norm" and model.fc_norm.eps == 1e-6
    qkv_bias = model.backbone.blocks[0].attn.qkv.bias
    q, v = state["blocks.0.attn.q_bias"], state["blocks.0.attn.v_bias"]
    assert torch.equal(qkv_bias, torch.cat([q, torch.zeros(384), v]))
    assert torch.equal(model.head.weight, state["head.weight"]) and "logits (1, 4)" in result.check


def _renamed_biases(state):
    return {
        k.replace("attention.attention.q_bias", "attention.attention.query.bias").replace(
            "attention.attention.v_bias", "attention.attention.value.bias"
        ): v
        for k, v in state.items()
    }


@pytest.mark.parametrize("variant", ["safetensors", "pytorch_model.bin", "transformers-5 names"])
def test_transformers_folders_convert_alike(tmp_path, variant, capsys):
    state = hf_state(fixture(CLASSIFICATION)[0])
    reference = convert_videomae(write_transformers_folder(tmp_path / "ref", CLASSIFICATION), tmp_path / "ref.ckpt")
    if variant == "pytorch_model.bin":
        folder = write_transformers_folder(tmp_path / "hf", CLASSIFICATION, weights="pytorch_model.bin")
    else:
        folder = write_transformers_folder(
            tmp_path / "hf", CLASSIFICATION, state=_renamed_biases(state) if "5" in variant else state
        )
    assert _cli(folder, "--output", tmp_path / "out.ckpt") == 0
    out = capsys.readouterr().out
    assert "transformers VideoMAEForVideoClassification, ViT 2 x 64, 4 heads, clip 4 x 32 x 32" in out
    ours = torch.load(tmp_path / "out.ckpt", weights_only=True)["state_dict"]
    theirs = torch.load(reference.output, weights_only=True)["state_dict"]
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_a_transformers_pretraining_folder_converts_with_its_epsilons(tmp_path):
    result = convert_videomae(write_transformers_folder(tmp_path / "hf", PRETRAINING), tmp_path / "out.ckpt")
    model = VideoMAEPretraining.load_from_checkpoint(result.output)
    assert model.encoder.norm.eps == 1e-12 and model.decoder.blocks[0].norm1.eps == 1e-12
    assert model.decoder.norm.eps == 1e-5 and "not in the file" not in result.source_format


# -- bad input: a clear error naming the file and the keys, and no output file ----------------------------------


def _refused(tmp_path, source, pattern: str) -> None:
    with pytest.raises(LayoutError, match=pattern):
        _cli(source, "--output", tmp_path / "out.ckpt")
    assert not list(tmp_path.glob("out.ckpt*"))  # neither the file nor a temporary one


def test_an_unknown_layout_is_refused_with_its_keys(tmp_path):
    torch.save({"model": {"backbone.stem.weight": torch.zeros(2, 2), "fc.bias": torch.zeros(2)}}, tmp_path / "x.pth")
    keys = r"its keys: backbone\.stem\.weight, fc\.bias"
    _refused(tmp_path, tmp_path / "x.pth", r"x\.pth' matches no VideoMAE layout .*" + keys)


def test_a_missing_key_is_named(tmp_path):
    state = random_mcg_state(pretraining=True)
    del state["encoder.blocks.0.attn.v_bias"], state["decoder.norm.weight"]
    torch.save({"model": state}, tmp_path / "x.pth")
    _refused(tmp_path, tmp_path / "x.pth", r"x\.pth'.*missing: encoder\.blocks\.0\.attn\.v_bias")
    state = random_mcg_state(pretraining=True)
    del state["decoder.norm.weight"]
    torch.save({"model": state}, tmp_path / "x.pth")
    _refused(tmp_path, tmp_path / "x.pth", r"x\.pth' does not match .*missing: decoder\.norm\.weight")


def test_a_shape_mismatch_and_an_unknown_key_are_named(tmp_path):
    state = random_mcg_state(pretraining=True)
    state["encoder.blocks.0.mlp.fc1.bias"] = torch.zeros(100)
    torch.save({"model": state}, tmp_path / "x.pth")
    _refused(
        tmp_path,
        tmp_path / "x.pth",
        r"x\.pth' .*shape \(file vs model\): encoder\.blocks\.0\.mlp\.fc1\.bias "
        r"\(100,\) vs \(1536,\)",
    )
    state = random_mcg_state(pretraining=True)
    state["encoder.blocks.0.gamma_1"] = torch.zeros(384)  # layer scale: not a VideoMAE release
    torch.save({"model": state}, tmp_path / "x.pth")
    _refused(tmp_path, tmp_path / "x.pth", r"keys of no MCG-NJU .* layout: encoder\.blocks\.0\.gamma_1")


def test_a_truncated_file_is_refused(tmp_path):
    torch.save({"model": random_mcg_state(pretraining=False)}, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "x.pth").write_bytes(data[: len(data) // 2])
    _refused(tmp_path, tmp_path / "x.pth", r"x\.pth' is not a readable PyTorch checkpoint \(truncated\?\)")
    folder = write_transformers_folder(tmp_path / "hf", CLASSIFICATION)
    blob = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(blob[: len(blob) // 2])
    _refused(tmp_path, folder, r"model\.safetensors' is not a readable safetensors file")


@pytest.mark.parametrize(
    "field, value, pattern",
    [
        ("num_hidden_layers", 3, r"missing: backbone\.blocks\.2\.attn\.proj\.bias.*read from '.*config\.json'"),
        ("intermediate_size", 128, r"fc1\.bias \(256,\) vs \(128,\).*config\.json'"),
        ("patch_size", 16, r"patch_embed\.proj\.weight \(64, 3, 2, 8, 8\) vs \(64, 3, 2, 16, 16\).*config\.json'"),
        ("model_type", "vit", r"config\.json' has model_type 'vit', not 'videomae'"),
    ],
)
def test_a_config_that_disagrees_with_the_weights_is_refused(tmp_path, field, value, pattern):
    config = fixture(CLASSIFICATION)[1]["config"] | {field: value}
    folder = write_transformers_folder(tmp_path / "hf", CLASSIFICATION, config=config)
    _refused(tmp_path, folder, pattern)


class Opaque:  # a pickled object that a weights-only unpickler will not build
    pass


def test_pickled_code_is_refused_without_the_flag(tmp_path):
    args = argparse.Namespace(model="vit_small_patch16_224")  # MCG-NJU's files hold their run's arguments: allowed
    torch.save({"model": random_mcg_state(pretraining=False), "args": args}, tmp_path / "ok.pth")
    assert convert_videomae(tmp_path / "ok.pth", tmp_path / "ok.ckpt").output.is_file()
    torch.save({"model": random_mcg_state(pretraining=False), "args": Opaque()}, tmp_path / "x.pth")
    _refused(tmp_path, tmp_path / "x.pth", r"x\.pth' holds pickled objects besides tensors.*--trust-pickle")


def test_a_transformers_weights_file_alone_asks_for_its_folder(tmp_path):
    folder = write_transformers_folder(tmp_path / "hf", CLASSIFICATION, weights="pytorch_model.bin")
    _refused(tmp_path, folder / "pytorch_model.bin", r"transformers VideoMAE weights .*with their config\.json")
    (folder / "config.json").unlink()
    _refused(tmp_path, folder, r"a folder without config\.json")


def test_a_stored_position_table_is_recognized_or_loaded(tmp_path):
    from lfq_kit.backbones.sincos import sinusoid_table

    state = random_mcg_state(pretraining=False)
    state["pos_embed"] = sinusoid_table(8 * 14 * 14, 384)  # VideoMAE's fixed table: nothing to load
    torch.save({"model": state}, tmp_path / "fixed.pth")
    model = VideoClassifier.load_from_checkpoint(convert_videomae(tmp_path / "fixed.pth", tmp_path / "a.ckpt").output)
    assert "backbone.pos_embed" not in model.state_dict()  # the fixed table is a buffer, not a weight
    state["pos_embed"] = torch.randn(1, 8 * 14 * 14, 384) * 0.02  # a learned one is kept
    torch.save({"model": state}, tmp_path / "learned.pth")
    result = convert_videomae(tmp_path / "learned.pth", tmp_path / "b.ckpt")
    model = VideoClassifier.load_from_checkpoint(result.output)
    assert isinstance(model.backbone.pos_embed, torch.nn.Parameter)
    assert torch.equal(model.backbone.pos_embed, state["pos_embed"]) and "learned position" in result.source_format


def test_arguments_that_contradict_config_json_are_refused(tmp_path):
    folder = write_transformers_folder(tmp_path / "hf", CLASSIFICATION)
    with pytest.raises(LayoutError, match=r"config\.json' disagrees with the arguments: num_heads 16 vs 4"):
        convert_videomae(folder, tmp_path / "out.ckpt", num_heads=16)
    assert not (tmp_path / "out.ckpt").exists()


def test_pretraining_continues_from_a_converted_checkpoint(tmp_path):
    """`VideoMAEPretraining(pretrained: X)` (what a config names) starts from every converted tensor and trains."""
    converted = convert_videomae(write_transformers_folder(tmp_path / "hf", PRETRAINING), tmp_path / "x.ckpt").output
    reference = VideoMAEPretraining.load_from_checkpoint(converted).state_dict()
    encoder = VideoViT((16, 32, 32), 2, 8, dim=64, depth=2, num_heads=4, norm_eps=1e-12)
    model = VideoMAEPretraining(
        encoder,
        "pixels",
        decoder_dim=32,
        decoder_depth=2,
        decoder_heads=2,
        decoder_norm_eps=1e-12,
        decoder_final_norm_eps=1e-5,
        pretrained=str(converted),
    )
    model.setup("fit")
    state = model.state_dict()
    assert sorted(model.loaded_keys) == sorted(state) == sorted(reference)
    assert all(torch.equal(state[k], reference[k]) for k in state)
    optimizer = model.configure_optimizers()["optimizer"]
    video = torch.rand((2, 3, 16, 32, 32), generator=torch.Generator().manual_seed(0)) * 2 - 1
    loss = model.training_step({"video": video}, 0)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(model.decoder.mask_token, reference["decoder.mask_token"])
