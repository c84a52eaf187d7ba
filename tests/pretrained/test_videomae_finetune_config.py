"""configs/kinetics_finetune_videomae.yaml and configs/pretrained/videomae_vit_{s,b,l}.yaml: parsed, instantiated and
checked against VideoMAE's recipe; the Kinetics config fine-tunes a step from a converted (tiny) VideoMAE checkpoint on
a miniature Kinetics tree and tests it with 5 clips x 3 crops per video."""

import json
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from tiny_videomae import (
    CHAIN_OVERRIDES,
    CLASSIFICATION,
    build_tiny_kinetics,
    build_tiny_videomae_base,
    write_transformers_folder,
)

from lfq_kit.backbones import VideoViTB, VideoViTL, VideoViTS
from lfq_kit.cli import LfqKitCLI
from lfq_kit.models import VideoClassifier, VideoMAEPretraining
from lfq_kit.pretrained.videomae import convert_videomae

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
KINETICS = CONFIGS / "kinetics_finetune_videomae.yaml"
ONE_STEP = [
    "--trainer.max_steps=1",
    "--trainer.limit_val_batches=1",
    "--trainer.val_check_interval=1",
    "--trainer.max_time=null",
    "--trainer.enable_progress_bar=false",
    "--trainer.logger=false",
]


@pytest.fixture(scope="module")
def kinetics_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "kinetics400"
    build_tiny_kinetics(root)
    return root


@pytest.mark.parametrize(
    "name, cls, size",
    [("s", VideoViTS, (384, 12, 6)), ("b", VideoViTB, (768, 12, 12)), ("l", VideoViTL, (1024, 24, 16))],
)
def test_the_architecture_configs_are_mcg_njus_encoders(name, cls, size, kinetics_root):
    path = CONFIGS / "pretrained" / f"videomae_vit_{name}.yaml"
    args = yaml.safe_load(path.read_text())["init_args"]
    assert (args["dim"], args["depth"], args["num_heads"]) == size
    assert (args["clip_size"], args["tubelet_size"], args["patch_size"], args["position"]) == (
        [16, 224, 224],
        2,
        16,
        "sincos",
    )
    cli = LfqKitCLI(
        args=[
            "-c",
            str(KINETICS),
            f"--model.init_args.backbone={path}",
            "--model.init_args.pretrained=null",
            f"--data.init_args.root={kinetics_root}",
            "--model.init_args.backbone.init_args.depth=1",
        ],
        run=False,
    )  # depth 1: seconds, not minutes
    backbone = cli.model.backbone
    assert type(backbone) is cls and (backbone.dim, backbone.blocks[0].attn.num_heads) == (size[0], size[2])
    assert backbone.grid == (8, 14, 14) and isinstance(backbone.norm, torch.nn.Identity)
    assert {m.eps for m in backbone.modules() if isinstance(m, torch.nn.LayerNorm)} == {1e-6}


def test_the_kinetics_config_is_videomaes_recipe():
    config = yaml.safe_load(KINETICS.read_text())
    model, data = config["model"]["init_args"], config["data"]["init_args"]
    backbone = model["backbone"]["init_args"]
    assert model["backbone"]["class_path"] == "VideoViTB" and backbone["clip_size"] == [16, 224, 224]
    assert (backbone["tubelet_size"], backbone["patch_size"], backbone["position"], backbone["drop_path"]) == (
        2,
        16,
        "sincos",
        0.1,
    )
    assert (model["pooling"], model["init_scale"], model["layer_decay"], model["base_lr"], model["weight_decay"]) == (
        "fc_norm",
        0.001,
        0.75,
        5e-4,
        0.05,
    )
    assert (model["mixup_alpha"], model["cutmix_alpha"], model["label_smoothing"], model["betas"]) == (
        0.8,
        1.0,
        0.1,
        [0.9, 0.999],
    )
    assert (data["frames_per_clip"], data["frame_stride"], data["resolution"]) == (16, 4, 224)
    assert (data["test_clips_per_video"], data["test_crops"]) == (5, 3)


def test_the_kinetics_config_fine_tunes_a_converted_checkpoint_and_tests_5x3_views(
    tmp_path, monkeypatch, kinetics_root
):
    monkeypatch.chdir(tmp_path)
    build_tiny_videomae_base(tmp_path / "videomae-base")
    converted = convert_videomae(tmp_path / "videomae-base", tmp_path / "videomae.ckpt").output
    encoder = VideoMAEPretraining.load_from_checkpoint(converted).encoder.state_dict()
    args = [
        "-c",
        str(KINETICS),
        f"--model.init_args.pretrained={converted}",
        f"--data.init_args.root={kinetics_root}",
        *CHAIN_OVERRIDES,
        *ONE_STEP,
    ]
    cli = LfqKitCLI(args=args, run=False)
    model = cli.model
    assert isinstance(model, VideoClassifier) and model.num_classes == 400
    loaded = []

    class Check(L.Callback):  # after setup, before the first step: exactly the converted encoder, norm left out
        def on_fit_start(self, trainer, module):
            state = module.backbone.state_dict()
            loaded.append(
                state.keys() == {k for k in encoder if not k.startswith("norm.")}
                and all(torch.equal(state[k], encoder[k]) for k in state)
            )

    cli.trainer.callbacks.append(Check())
    cli.trainer.fit(model, datamodule=cli.datamodule)
    assert loaded == [True] and model.global_step == 1 and torch.isfinite(cli.trainer.callback_metrics["val/top1"])
    cli.trainer.test(model, datamodule=cli.datamodule)
    scores = model.test_scores
    assert scores.videos.tolist() == [0, 1, 2] and scores.views.tolist() == [15, 15, 15]  # 5 clips x 3 crops each
    assert json.loads(json.dumps(float(cli.trainer.callback_metrics["test/top1"]))) <= 100


def test_a_converted_fine_tuned_classifier_is_tested_with_the_kinetics_config(tmp_path, monkeypatch, kinetics_root):
    """`lfq-kit test --ckpt_path <converted fine-tuned file>`: the official classifier evaluated as it is."""
    monkeypatch.chdir(tmp_path)
    source = write_transformers_folder(tmp_path / "videomae-base-finetuned-kinetics", CLASSIFICATION)
    converted = convert_videomae(source, tmp_path / "k400.ckpt").output
    reference = VideoClassifier.load_from_checkpoint(converted).state_dict()
    sizes = [a.replace("[16, 32, 32]", "[4, 32, 32]") for a in CHAIN_OVERRIDES]
    cli = LfqKitCLI(
        args=[
            "-c",
            str(KINETICS),
            "--model.init_args.pretrained=null",
            "--model.init_args.num_classes=5",
            "--data.init_args.frames_per_clip=4",
            f"--data.init_args.root={kinetics_root}",
            *sizes,
            "--trainer.logger=false",
            "--trainer.enable_progress_bar=false",
        ],
        run=False,
    )
    cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=str(converted))
    state = cli.model.state_dict()
    assert state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)
    assert cli.model.test_scores.views.tolist() == [15, 15, 15]
