"""The action-recognition configs parse, instantiate and train a step on miniature data, with the tiny test
tokenizer and a tiny ViT in place of the paper's (5 x 16 x 16 clips, 3 x 8 x 8 tokens); Kinetics fine-tuning
starts from a pretraining checkpoint made by the UCF-101 pretraining config and is tested multi-view."""

import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from lfq_kit.backbones import VideoViTB
from lfq_kit.cli import LfqKitCLI, main
from lfq_kit.models import VideoClassifier, VideoMAEPretraining

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = {
    "clip_size": [5, 16, 16],
    "tubelet_size": 2,
    "patch_size": 2,
    "first_frame_patch": True,
    "dim": 32,
    "depth": 2,
    "num_heads": 2,
}
TRAIN_ONE_STEP = [
    "--trainer.max_steps=1",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
    "--trainer.strategy=auto",
    "--trainer.precision=32",
    "--trainer.limit_val_batches=1",
    "--trainer.max_time=null",
    "--trainer.enable_progress_bar=false",
    "--trainer.val_check_interval=1",
]
CLIP_DATA = [
    "--data.init_args.resolution=16",
    "--data.init_args.batch_size=2",
    "--data.init_args.num_workers=0",
    "--data.init_args.frames_per_clip=5",
]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Miniature UCF-101 and Kinetics trees from the bundled clips."""
    import dataset_trees
    from video_fixtures import decode_all, sample_clip

    frames = decode_all(sample_clip("bikes.mp4"))[:48]
    ucf = dataset_trees.build_mini_ucf101(tmp_path_factory.mktemp("ucf"), frames)
    kinetics = dataset_trees.build_kinetics(tmp_path_factory.mktemp("k400"), np.ascontiguousarray(frames))
    return {"ucf101": ucf, "kinetics": kinetics.root}


def _pretrain(config: str, extra: list[str]) -> LfqKitCLI:
    encoder = json.dumps({"class_path": "VideoViTTiny", "init_args": TINY})
    return LfqKitCLI(
        args=[
            "-c",
            str(CONFIGS / config),
            f"--model.init_args.encoder={encoder}",
            "--model.init_args.decoder_dim=32",
            "--model.init_args.decoder_heads=2",
            *TRAIN_ONE_STEP,
            *extra,
        ],
        run=False,
    )


@pytest.mark.parametrize(
    "config", ["videomae_ucf101.yaml", "quickstart_videomae.yaml", "quickstart_videomae_pixels.yaml"]
)
def test_pretraining_configs_train_a_step(config, tokenizer_ckpt, trees, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative runs/ folders land here
    extra = CLIP_DATA + ([f"--data.init_args.root={trees['ucf101']}"] if "ucf101" in config else [])
    if "pixels" not in config:
        extra.append(f"--model.init_args.tokenizer={tokenizer_ckpt}")
    cli = _pretrain(config, extra)
    assert isinstance(cli.model, VideoMAEPretraining)
    assert cli.model.target == ("pixels" if "pixels" in config else "tokens")
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.model.global_step == 1 and torch.isfinite(cli.trainer.callback_metrics["val/loss"])
    assert list((tmp_path / "runs").rglob("last.ckpt"))


def test_the_paper_pretraining_config_is_the_reference_recipe(tokenizer_ckpt, trees, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [
        "-c",
        str(CONFIGS / "videomae_ucf101.yaml"),
        f"--data.init_args.root={trees['ucf101']}",
        f"--model.init_args.tokenizer={tokenizer_ckpt}",
    ]
    with pytest.raises(ValueError, match=r"ViT grid \(5, 16, 16\).*token grid \(9, 64, 64\)"):
        LfqKitCLI(args=args, run=False)  # the tiny tokenizer (2x/2x) does not fit the ViT-B's 4x8x8 tubelets
    cli = LfqKitCLI(
        args=[
            *args,
            "--model.init_args.encoder.init_args.clip_size=[5, 16, 16]",
            "--model.init_args.encoder.init_args.tubelet_size=2",
            "--model.init_args.encoder.init_args.patch_size=2",
        ],
        run=False,
    )
    model = cli.model
    assert isinstance(model.encoder, VideoViTB) and (model.encoder.depth, model.encoder.dim) == (12, 768)
    hp = model.hparams
    assert (hp.mask_ratio, hp.decoder_dim, hp.decoder_depth, tuple(hp.betas), hp.weight_decay, hp.base_lr) == (
        0.75,
        384,
        4,
        (0.9, 0.95),
        0.05,
        1.5e-4,
    )


def _finetune(config: str, pretrained: str | None, extra: list[str]) -> LfqKitCLI:
    backbone = json.dumps({"class_path": "VideoViTTiny", "init_args": {**TINY, "drop_path": 0.1}})
    return LfqKitCLI(
        args=[
            "-c",
            str(CONFIGS / config),
            f"--model.init_args.backbone={backbone}",
            f"--model.init_args.pretrained={pretrained or 'null'}",
            *TRAIN_ONE_STEP,
            *extra,
        ],
        run=False,
    )


def test_kinetics_finetune_starts_from_a_pretraining_checkpoint_and_tests_every_video_once(
    tokenizer_ckpt, trees, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    pre = _pretrain(
        "videomae_ucf101.yaml",
        [*CLIP_DATA, f"--data.init_args.root={trees['ucf101']}", f"--model.init_args.tokenizer={tokenizer_ckpt}"],
    )
    pre.trainer.fit(pre.model, datamodule=pre.datamodule)
    checkpoint = tmp_path / "runs/videomae_ucf101/checkpoints/last.ckpt"
    cli = _finetune(
        "kinetics_finetune.yaml",
        str(checkpoint),
        [*CLIP_DATA, f"--data.init_args.root={trees['kinetics']}", "--model.init_args.num_classes=3"],
    )
    model = cli.model
    assert isinstance(model, VideoClassifier)
    encoder = pre.model.encoder.state_dict()
    loaded = []

    class Check(L.Callback):  # after setup, before the first step: exactly the pretrained tensors
        def on_fit_start(self, trainer, module):
            loaded.append(all(torch.equal(module.backbone.state_dict()[k], v) for k, v in encoder.items()))

    cli.trainer.callbacks.append(Check())
    hp = model.hparams
    assert (hp.layer_decay, hp.mixup_alpha, hp.cutmix_alpha, hp.label_smoothing) == (0.75, 0.8, 1.0, 0.1)
    assert (cli.datamodule.test_clips_per_video, cli.datamodule.test_crops) == (5, 3)
    cli.trainer.fit(model, datamodule=cli.datamodule)
    assert loaded == [True] and sorted(model.loaded_keys) == sorted(encoder)
    assert model.global_step == 1 and torch.isfinite(cli.trainer.callback_metrics["val/top1"])
    cli.trainer.test(model, datamodule=cli.datamodule)
    scores = model.test_scores
    assert scores.videos.tolist() == [0, 1, 2] and scores.views.tolist() == [15, 15, 15]  # 3 present val videos
    assert 0 <= float(cli.trainer.callback_metrics["test/top1"]) <= 100


@pytest.mark.parametrize("config", ["ucf101_finetune.yaml", "quickstart_finetune.yaml"])
def test_finetune_configs_train_a_step(config, trees, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "ucf101" in config:
        extra = [*CLIP_DATA, f"--data.init_args.root={trees['ucf101']}", "--model.init_args.num_classes=2"]
    else:
        extra = [
            "--data.init_args.resolution=16",
            "--data.init_args.frames_per_clip=5",
            "--data.init_args.batch_size=2",
            "--data.init_args.eval_video_frames=7",
            "--data.init_args.eval_segments=1",
        ]
    cli = _finetune(config, None, extra)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.model.global_step == 1 and torch.isfinite(cli.trainer.callback_metrics["val/top1"])


def test_the_quickstart_finetune_reads_the_quickstart_pretraining_checkpoint():
    import yaml

    pre = yaml.safe_load((CONFIGS / "quickstart_videomae.yaml").read_text())
    ft = yaml.safe_load((CONFIGS / "quickstart_finetune.yaml").read_text())
    path = ft["model"]["init_args"]["pretrained"]
    assert path == pre["trainer"]["callbacks"][0]["init_args"]["dirpath"] + "/last.ckpt"
    assert pre["model"]["init_args"]["tokenizer"] == "runs/quickstart/checkpoints/last.ckpt"
    assert ft["model"]["init_args"]["backbone"]["init_args"] | {"drop_path": 0.0} == pre["model"]["init_args"][
        "encoder"
    ]["init_args"] | {"drop_path": 0.0}


def test_a_missing_pretrained_checkpoint_is_a_plain_error_naming_the_file_and_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no runs/quickstart_videomae here: the quickstart's first fine-tuning mistake
    args = [
        "fit",
        "-c",
        str(CONFIGS / "quickstart_finetune.yaml"),
        *TRAIN_ONE_STEP,
        "--trainer.logger=false",
        "--data.init_args.resolution=16",
        "--data.init_args.frames_per_clip=5",
        "--data.init_args.batch_size=2",
        "--data.init_args.eval_video_frames=7",
        "--data.init_args.eval_segments=1",
        f"--model.init_args.backbone={json.dumps({'class_path': 'VideoViTTiny', 'init_args': TINY})}",
    ]
    with pytest.raises(FileNotFoundError) as error:  # not a jsonargparse "Does not validate ... Union" exit
        main(args)
    message = str(error.value)
    assert "'runs/quickstart_videomae/checkpoints/last.ckpt' not found" in message
    assert "lfq-kit fit --config configs/quickstart_videomae.yaml" in message and "Union" not in message
    assert not (tmp_path / "runs/quickstart_finetune/checkpoints").exists()  # failed before any training
