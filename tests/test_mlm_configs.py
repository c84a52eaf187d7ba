"""The masked-LM configs parse, instantiate and train a step (with validation and sample logging) on miniature
data, with the tiny test tokenizer in place of the paper's (so clip size and grid are overridden to its own)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from lfq_kit.backbones import TransformerL
from lfq_kit.cli import LfqKitCLI
from lfq_kit.models import MaskedLM

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
MLM_CONFIGS = ["quickstart_mlm.yaml", "ucf101_mlm.yaml", "k600_frame_prediction.yaml", "imagenet_mlm.yaml"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """Miniature UCF-101, Kinetics and ImageNet trees from the bundled clips and photos."""
    import dataset_trees
    from video_fixtures import decode_all, sample_clip

    frames = decode_all(sample_clip("bikes.mp4"))[:48]
    ucf = dataset_trees.build_mini_ucf101(tmp_path_factory.mktemp("ucf"), frames)
    kinetics = dataset_trees.build_kinetics(tmp_path_factory.mktemp("k600"), np.ascontiguousarray(frames))
    images = dataset_trees.build_image_folder(tmp_path_factory.mktemp("imagenet"))
    return {"ucf101_mlm.yaml": ucf, "k600_frame_prediction.yaml": kinetics.root, "imagenet_mlm.yaml": images.root}


@pytest.fixture(scope="module")
def quickstart_shards(tokenizer_ckpt, tmp_path_factory) -> Path:
    """configs/quickstart_tokens.yaml's shards (train, val, holdout) of the tiny tokenizer's tokens, written by
    ``lfq-kit predict`` at its size (5 x 16 x 16 clips, 3 training-style views per training video)."""
    import json

    from lfq_kit.cli import main

    out = tmp_path_factory.mktemp("quickstart_tokens")
    writer = [{"class_path": "lfq_kit.callbacks.TokenWriter", "init_args": {"output_dir": str(out)}}]
    args = [
        "predict",
        "-c",
        str(CONFIGS / "quickstart_tokens.yaml"),
        f"--model.init_args.tokenizer={tokenizer_ckpt}",
        "--data.init_args.frames_per_clip=5",
        "--data.init_args.resolution=16",
        "--data.init_args.batch_size=4",
        "--data.init_args.predict_train_views=3",
        "--trainer.enable_progress_bar=false",
        f"--trainer.callbacks={json.dumps(writer)}",
    ]
    assert main(args) in (0, None)
    return out


def test_quickstart_tokens_config_writes_the_three_splits_with_the_tokenizer_hash(quickstart_shards, tokenizer_ckpt):
    from lfq_kit.data.tokens import read_token_split
    from lfq_kit.models import FrozenTokenizer

    expected = {"train": (6, [0, 1]), "val": (4, [2]), "holdout": (8, [0, 1])}  # 3 views x 2 videos; 4 clips each
    for split, (clips, labels) in expected.items():
        header, tensors, _ = read_token_split(quickstart_shards / split)
        assert tensors["indices"].shape == (clips, 3, 8, 8) and sorted(set(tensors["labels"].tolist())) == labels
        assert header["tokenizer_hash"] == FrozenTokenizer(tokenizer_ckpt).hash and header["codebook_size"] == 2**18


def _overrides(name: str, tokenizer: Path, trees) -> list[str]:
    image = name == "imagenet_mlm.yaml"
    args = [
        f"--model.init_args.tokenizer={tokenizer}",
        f"--model.init_args.clip_size=[{1 if image else 5}, 16, 16]",
        f"--model.init_args.grid=[{1 if image else 3}, 8, 8]",
        "--trainer.max_steps=1",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.strategy=auto",
        "--trainer.precision=32",
        "--trainer.val_check_interval=1",
        "--trainer.limit_val_batches=1",
        "--trainer.max_time=null",
        "--trainer.enable_progress_bar=false",
        "--data.init_args.batch_size=2",
    ]
    if name == "quickstart_mlm.yaml":  # token shards (configs/quickstart_tokens.yaml), see quickstart_shards
        args = [a for a in args if not a.startswith("--model.init_args.grid")]  # TokenDataModule(grid=None) too
        return [
            *args,
            f"--data.init_args.root={trees[name]}",
            "--model.init_args.condition_frames=3",
            "--trainer.check_val_every_n_epoch=1",
        ]
    args += ["--data.init_args.resolution=16", "--data.init_args.num_workers=0"]
    if not image:
        args.append("--data.init_args.frames_per_clip=5")
    if name in trees:
        args.append(f"--data.init_args.root={trees[name]}")
    if name == "k600_frame_prediction.yaml":
        args.append("--model.init_args.condition_frames=3")  # 3 frames -> 2 of the tiny tokenizer's 3 latent frames
    return args


@pytest.mark.parametrize("name", MLM_CONFIGS)
def test_mlm_config_trains_a_step_validates_and_logs_samples(
    name, tokenizer_ckpt, trees, quickstart_shards, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the configs' relative runs/ folders land here
    trees = {**trees, "quickstart_mlm.yaml": quickstart_shards}
    cli = LfqKitCLI(
        args=[
            "-c",
            str(CONFIGS / name),
            *_overrides(name, tokenizer_ckpt, trees),
            "--model.init_args.backbone=TransformerTiny",
        ],
        run=False,
    )
    model = cli.model
    assert isinstance(model, MaskedLM) and model.codebook_size == 2**18 and model.tokens.sub_vocab == 512
    cli.trainer.fit(model, datamodule=cli.datamodule)
    assert model.global_step == 1
    assert torch.isfinite(cli.trainer.callback_metrics["val/bits_per_token"])
    assert (tmp_path / "runs").is_dir()  # logs and checkpoints follow the config's fixed relative paths
    if any(type(c).__name__ == "GenerationLogger" for c in cli.trainer.callbacks):
        events = list((tmp_path / "runs").rglob("events.out.tfevents*"))
        assert events and max(e.stat().st_size for e in events) > 1000  # the sample grid was written


def test_paper_configs_use_the_reference_model_and_refuse_a_tokenizer_of_another_grid(tokenizer_ckpt, trees):
    args = [
        "-c",
        str(CONFIGS / "ucf101_mlm.yaml"),
        f"--model.init_args.tokenizer={tokenizer_ckpt}",
        f"--data.init_args.root={trees['ucf101_mlm.yaml']}",
    ]
    with pytest.raises(ValueError, match=r"grid \(5, 16, 16\) .* makes \(9, 64, 64\) from \(17, 128, 128\)"):
        LfqKitCLI(args=args, run=False)
    cli = LfqKitCLI(
        args=[*args, "--model.init_args.clip_size=[5, 16, 16]", "--model.init_args.grid=[3, 8, 8]"], run=False
    )
    backbone = cli.model.backbone
    assert isinstance(backbone, TransformerL) and (backbone.depth, backbone.dim) == (24, 1024)
    assert 300e6 < sum(p.numel() for p in backbone.parameters()) < 310e6  # MAGVIT-L, about 306M
    hp = cli.model.hparams
    assert (hp.num_classes, hp.class_dropout, hp.label_smoothing, hp.num_groups) == (101, 0.1, 0.1, 2)
    opt = cli.model.configure_optimizers()["optimizer"]
    assert opt.defaults["betas"] == (0.9, 0.96) and opt.defaults["weight_decay"] == 0.045 and opt.defaults["lr"] == 1e-4
