"""Every shipped config parses and instantiates; configs/ucf101.yaml trains a real step on a UCF-101 tree;
every recommended composition of configs trains a step and keeps the values it means to keep."""

import json
import re
import shlex
from pathlib import Path

import av
import numpy as np
import pytest
import timm
import torch
import yaml
from dataset_trees import build_mini_ucf101
from safetensors.torch import load_file, save_file
from video_fixtures import sample_clip
from workdir import fresh_workdir

from lfq_kit.callbacks import AtomicModelCheckpoint
from lfq_kit.cli import LfqKitCLI
from lfq_kit.models import VideoTokenizer

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
ABLATIONS = sorted((CONFIGS / "ablations").rglob("*.yaml"))


@pytest.fixture(scope="module")
def mini_ucf(tmp_path_factory) -> Path:
    """Two classes, two 24-frame AVI videos each, official folder and split-file layout."""
    with av.open(str(sample_clip("bikes.mp4"))) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(48), container.decode(video=0))])
    return build_mini_ucf101(tmp_path_factory.mktemp("ucf"), frames)


@pytest.fixture(scope="module")
def resnet50_file(tmp_path_factory) -> Path:
    """A (randomly initialized) ResNet-50 state dict on disk: the perceptual loss's local-file path."""
    path = tmp_path_factory.mktemp("weights") / "resnet50.safetensors"
    save_file(timm.create_model("resnet50", pretrained=False).state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def mini_imagenet(tmp_path_factory) -> Path:
    """ImageFolder layout with real photos from scikit-image: two classes in train/ and val/."""
    import skimage.data
    from PIL import Image

    root = tmp_path_factory.mktemp("imagenet")
    for split in ("train", "val"):
        for cls, photo in (("cat", skimage.data.chelsea()), ("coffee", skimage.data.coffee())):
            (root / split / cls).mkdir(parents=True)
            Image.fromarray(photo).save(root / split / cls / f"{cls}_{split}.JPEG")
    return root


def instantiate(*args: str) -> LfqKitCLI:
    return LfqKitCLI(args=list(args), run=False)


# --- recommended compositions: found in the docs and config headers, checked against the files ----------

COMMAND_SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(CONFIGS.rglob("*.yaml"))]
_FENCE = re.compile(r"^```(?:bash|console)\n(.*?)^```", re.S | re.M)


def _documented_fit_commands(path: Path):
    """The `lfq-kit fit` argument lists of a doc's bash/console blocks, or of a config's header comments."""
    if path.suffix == ".md":
        text = "".join(_FENCE.findall(path.read_text()))
    else:
        text = "\n".join(line.lstrip("# ") for line in path.read_text().splitlines() if line.startswith("#"))
    for line in text.replace("\\\n", " ").splitlines():
        for part in line.removeprefix("$ ").split("&&"):
            if part.strip().startswith("lfq-kit fit"):
                yield shlex.split(part, comments=True)[2:]


def _configs_of(args: list[str]) -> list[str]:
    return [args[i + 1] for i, a in enumerate(args) if a in ("-c", "--config")]


def recommended_compositions() -> dict[str, list[str]]:
    """Every `lfq-kit fit` command with two or more configs that README, docs/ or a config header recommends."""
    found: dict[str, list[str]] = {}
    for path in COMMAND_SOURCES:
        for args in _documented_fit_commands(path):
            if len(_configs_of(args)) >= 2:
                found.setdefault(" ".join(args), args)
    return found


COMPOSITIONS = recommended_compositions()

# Per base config: one step at tiny sizes on miniature data, quickly (the values the check below ignores).
SMALL = {
    "configs/quickstart.yaml": [
        "--trainer.max_steps=1",
        "--trainer.max_time=null",
        "--data.init_args.clips_per_epoch=1",
        "--data.init_args.batch_size=1",
        "--data.init_args.clips_per_video=1",
        "--data.init_args.resolution=32",
        "--data.init_args.train_crop_size=null",
        "--model.init_args.encoder.init_args.num_res_blocks=1",
        "--model.init_args.decoder.init_args.num_res_blocks=1",
    ],
    "configs/ucf101.yaml": [
        "--data.init_args.root={mini_ucf}",
        "--data.init_args.resolution=32",
        "--data.init_args.batch_size=1",
        "--data.init_args.num_workers=0",
        "--data.init_args.clips_per_video=1",
        *[
            f"--model.init_args.{part}.init_args.{k}={v}"
            for part in ("encoder", "decoder")
            for k, v in (("base_channels", 8), ("num_res_blocks", 1), ("num_groups", 4))
        ],
        "--model.init_args.discriminator.init_args.base_channels=8",
        "--model.init_args.perceptual_loss=null",
        "--model.init_args.disc_start=0",
        "--trainer.max_steps=2",
        "--trainer.precision=32",
        "--trainer.strategy=auto",
        "--trainer.devices=1",
        "--trainer.accelerator=cpu",
        "--trainer.val_check_interval=1",
    ],
}
COMMON = [
    "--trainer.limit_val_batches=1",
    "--trainer.num_sanity_val_steps=0",
    "--trainer.enable_progress_bar=false",
    "--trainer.default_root_dir={tmp}",
    "--trainer.logger.init_args.save_dir={tmp}",
]


def _overrides(args: list[str]) -> dict[tuple[str, ...], object]:
    """`--a.b value` / `--a.b=value` flags (not the configs) → {("a", "b"): parsed value}."""
    out, i = {}, 0
    while i < len(args):
        key, eq, value = args[i].partition("=")
        if not eq:
            value, i = args[i + 1], i + 1
        if key not in ("-c", "--config"):
            out[tuple(key.removeprefix("--").split("."))] = yaml.safe_load(value)
        i += 1
    return out


def _merge(into: dict, update: dict) -> dict:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value
    return into


def _nest(path, value) -> dict:
    tree = value
    for key in reversed(path):
        tree = {key: tree}
    return tree


def _leaves(tree, path=()):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(tree, list) and tree and all(isinstance(v, dict) for v in tree):  # callbacks
        for i, value in enumerate(tree):
            yield from _leaves(value, (*path, i))
    else:
        yield path, tree


def _lookup(tree, path):
    for key in path:
        found = key in tree if isinstance(tree, dict) else isinstance(tree, list) and key < len(tree)
        if not found:
            raise KeyError(path)
        tree = tree[key]
    return tree


def check_composition(composed: dict, configs: list[str], overrides: dict, ignored: set) -> None:
    """Each value the config files and documented flags set (later ones winning) is in the composed config;
    a value dropped on the way (jsonargparse keeps only the init_args a new class_path accepts) must be named in
    a file composed after the base, which says so."""
    intended = {}
    for config in configs:
        _merge(intended, yaml.safe_load((ROOT / config).read_text()))
    for path, value in overrides.items():
        _merge(intended, _nest(path, value))
    notes = "".join((ROOT / c).read_text() for c in configs[1:])
    for path, value in _leaves(intended):
        if any(path[: len(skip)] == skip for skip in ignored):
            continue
        dotted = ".".join(map(str, path))
        try:
            got = _lookup(composed, path)
        except KeyError:
            assert str(path[-1]) in notes, f"{' + '.join(configs)} drops {dotted} ({value!r}) without saying so"
            continue
        if path[-1] == "class_path":
            assert got == value or got.endswith(f".{value}"), (dotted, got, value)
        else:
            got = list(got) if isinstance(got, tuple) else got
            assert got == value, f"{dotted}: composed {got!r}, intended {value!r}"


def test_ucf101_config_instantiates_the_paper_model(mini_ucf):
    cli = instantiate("-c", str(CONFIGS / "ucf101.yaml"), f"--data.init_args.root={mini_ucf}")
    model = cli.model
    assert isinstance(model, VideoTokenizer)
    assert model.quantizer.codebook_size == 2**18 and type(model.quantizer).__name__ == "LFQ"
    assert model.encoder.latent_shape(17, 128, 128) == (5, 16, 16)
    assert model.hparams.ema_decay == 0.999 and model.hparams.disc_start == 20000
    assert cli.datamodule.num_classes == 2
    assert cli.trainer.max_steps == 1_000_000 and model.steps_per_batch == 2


def test_imagenet_config_trains_one_step_on_images(mini_imagenet, tmp_path):
    cli = instantiate("-c", str(CONFIGS / "imagenet.yaml"), f"--data.init_args.root={mini_imagenet}")
    assert cli.model.quantizer.codebook_size == 2**18
    assert cli.model.encoder.latent_shape(1, 128, 128) == (1, 16, 16)
    assert cli.datamodule.num_classes == 2
    small = [
        f"--model.init_args.{part}.init_args.{k}={v}"
        for part in ("encoder", "decoder")
        for k, v in (("base_channels", 8), ("num_res_blocks", 1), ("num_groups", 4))
    ]
    cli = LfqKitCLI(
        args=[
            "fit",
            "-c",
            str(CONFIGS / "imagenet.yaml"),
            f"--data.init_args.root={mini_imagenet}",
            "--data.init_args.resolution=32",
            "--data.init_args.batch_size=2",
            "--data.init_args.num_workers=0",
            *small,
            "--model.init_args.discriminator.init_args.base_channels=8",
            "--model.init_args.perceptual_loss=null",
            "--model.init_args.disc_start=0",
            "--trainer.max_steps=2",
            "--trainer.precision=32",
            "--trainer.strategy=auto",
            "--trainer.devices=1",
            "--trainer.accelerator=cpu",
            "--trainer.limit_val_batches=1",
            "--trainer.val_check_interval=1",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert cli.model.generator_step == 1
    for key in ("train/reconstruction", "train/discriminator", "val/psnr_per_frame", "val/psnr_pooled"):
        assert torch.isfinite(cli.trainer.callback_metrics[key]), key


def test_quickstart_keeps_the_latest_and_the_best_checkpoint(tmp_path, monkeypatch):
    """last.ckpt must hold the final step even when val/psnr_per_frame got worse at the end (it is what users
    resume from); the best checkpoint, by per-frame PSNR, is kept next to it, both in the fixed folder
    runs/quickstart/checkpoints/ that configs/quickstart_mlm.yaml reads."""
    fresh_workdir(tmp_path, monkeypatch)  # the config's relative checkpoint folder lands here, not in the repository
    cli = LfqKitCLI(
        args=[
            "fit",
            "-c",
            str(CONFIGS / "quickstart.yaml"),
            "--trainer.max_steps=3",
            "--trainer.max_time=null",
            "--data.init_args.clips_per_epoch=2",
            "--data.init_args.clips_per_video=1",
            "--model.init_args.decay_steps=3",
            "--trainer.enable_progress_bar=false",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
        ]
    )
    best, latest = [cb for cb in cli.trainer.callbacks if isinstance(cb, AtomicModelCheckpoint)]
    assert (best.monitor, latest.monitor) == ("val/psnr_per_frame", None)
    assert cli.trainer.global_step == 3 and cli.trainer.current_epoch == 3  # one step per epoch, 3 validations
    last = torch.load(latest.last_model_path, map_location="cpu", weights_only=False)
    expected = (tmp_path / "runs/quickstart/checkpoints/last.ckpt").resolve()
    assert Path(latest.last_model_path).resolve() == expected and last["global_step"] == 3
    kept = torch.load(best.best_model_path, map_location="cpu", weights_only=False)
    psnr = kept["callbacks"][next(k for k in kept["callbacks"] if "val/psnr_per_frame" in k)]["best_model_score"]
    assert Path(best.best_model_path).name.startswith("best-step=") and psnr == best.best_model_score
    assert best.best_model_score == max(best.best_k_models.values())


def test_quickstart_config_instantiates_on_the_sample_clips():
    cli = instantiate("-c", str(CONFIGS / "quickstart.yaml"))
    model, data = cli.model, cli.datamodule
    assert model.encoder.latent_shape(17, 64, 64) == (5, 8, 8)  # the paper's compression at 64 x 64
    assert model.quantizer.codebook_size == 2**18 and model.discriminator is None
    assert (model.quantizer.inv_temperature, model.quantizer.commitment_weight) == (2.0, 0.05)
    assert model.encoder.tubelet_shortcut and model.decoder.tubelet_shortcut
    assert model.encoder.token_mlp_channels == model.decoder.token_mlp_channels == 512
    assert model.encoder.head.hidden_channels == model.decoder.head.hidden_channels == 512
    assert type(data).__name__ == "SampleClipsDataModule" and data.resolution == 64 and data.cache_frames
    # patch training: 9-frame 32 x 32 windows (a 3 x 4 x 4 grid); validation on whole 17 x 64 x 64 clips
    assert (data.train_frames_per_clip, data.train_crop_size, data.frames_per_clip) == (9, 32, 17)
    assert model.encoder.latent_shape(9, 32, 32) == (3, 4, 4)
    assert cli.trainer.max_steps == model.hparams.decay_steps  # the cosine ends with the run


_WIDTHS = {
    ("model", "init_args", part, "init_args", "base_channels") for part in ("encoder", "decoder", "discriminator")
}


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_ablation_configs_compose_with_ucf101(ablation, mini_ucf):
    cli = instantiate(
        "-c",
        str(CONFIGS / "ucf101.yaml"),
        "-c",
        str(ablation),
        f"--data.init_args.root={mini_ucf}",
        # small widths keep instantiation fast; the ablation decides quantizer, latent size or backbone
        "--model.init_args.encoder.init_args.base_channels=32",
        "--model.init_args.decoder.init_args.base_channels=32",
        "--model.init_args.discriminator.init_args.base_channels=8",
    )
    configs = ["configs/ucf101.yaml", str(ablation.relative_to(ROOT))]
    check_composition(cli.config.as_dict(), configs, {}, {("data", "init_args", "root"), *_WIDTHS})
    model = cli.model
    assert model.quantizer.dim == model.encoder.out_channels == model.decoder.in_channels
    text = ablation.read_text()
    for name in ("LFQ", "VQ", "FSQ", "BSQ"):
        if f"class_path: {name}" in text:
            assert type(model.quantizer).__name__ == name
    if "2e10" in ablation.name:
        assert model.quantizer.codebook_size == 2**10
    if "2e14" in ablation.name:
        assert model.quantizer.codebook_size == 2**14
    if ablation.parent.name == "backbone":
        encoder = type(model.encoder).__name__
        assert encoder == ablation.stem.capitalize() + "Encoder"
        frames = cli.datamodule.frames_per_clip
        assert model.encoder.latent_shape(frames, 128, 128) == ((5 if encoder == "Magvit2Encoder" else 4), 16, 16)


def test_ucf101_config_trains_one_step_on_a_ucf101_tree(mini_ucf, resnet50_file, tmp_path):
    small = {
        "encoder.init_args.base_channels": 8,
        "decoder.init_args.base_channels": 8,
        "encoder.init_args.num_groups": 4,
        "decoder.init_args.num_groups": 4,
        "encoder.init_args.num_res_blocks": 1,
        "decoder.init_args.num_res_blocks": 1,
        "discriminator.init_args.base_channels": 8,
        "perceptual_loss.init_args.weights": resnet50_file,
        "perceptual_loss.init_args.input_size": 32,
        "disc_start": 0,
    }
    cli = LfqKitCLI(
        args=[
            "fit",
            "-c",
            str(CONFIGS / "ucf101.yaml"),
            f"--data.init_args.root={mini_ucf}",
            "--data.init_args.resolution=32",
            "--data.init_args.batch_size=1",
            "--data.init_args.num_workers=0",
            *[f"--model.init_args.{k}={v}" for k, v in small.items()],
            "--trainer.max_steps=2",
            "--trainer.precision=32",
            "--trainer.strategy=auto",
            "--trainer.devices=1",
            "--trainer.accelerator=cpu",
            "--trainer.limit_val_batches=1",
            "--trainer.val_check_interval=1",
            f"--trainer.default_root_dir={tmp_path}",
            f"--trainer.logger.init_args.save_dir={tmp_path}",
            "--trainer.enable_progress_bar=false",
        ]
    )
    assert cli.model.generator_step == 1 and cli.trainer.global_step == 2
    metrics = cli.trainer.callback_metrics
    for key in (
        "train/reconstruction",
        "train/perceptual",
        "train/discriminator",
        "val/psnr_per_frame",
        "val/psnr_pooled",
        "val/codebook_usage",
    ):
        assert key in metrics and torch.isfinite(metrics[key]), key
    assert list((tmp_path / "ucf101_tokenizer").rglob("config.yaml"))  # resolved config saved with the run
    assert list((tmp_path / "ucf101_tokenizer").rglob("events.out.tfevents.*"))  # TensorBoard, with grids


def test_predict_writes_the_tokens_of_both_splits(mini_ucf, tmp_path):
    out = tmp_path / "tokens"
    small = [
        f"--model.init_args.{part}.init_args.{k}={v}"
        for part in ("encoder", "decoder")
        for k, v in (("base_channels", 8), ("num_res_blocks", 1), ("num_groups", 4))
    ]
    LfqKitCLI(
        args=[
            "predict",
            "-c",
            str(CONFIGS / "ucf101.yaml"),
            f"--data.init_args.root={mini_ucf}",
            "--data.init_args.resolution=32",
            "--data.init_args.batch_size=1",
            "--data.init_args.num_workers=0",
            "--data.init_args.clips_per_video=2",
            *small,
            "--model.init_args.discriminator=null",
            "--model.init_args.perceptual_loss=null",
            "--trainer.precision=32",
            "--trainer.strategy=auto",
            "--trainer.devices=1",
            "--trainer.accelerator=cpu",
            "--trainer.logger=false",
            "--trainer.callbacks+=TokenWriter",
            f"--trainer.callbacks.output_dir={out}",
            "--return_predictions=false",
            f"--trainer.default_root_dir={tmp_path}",
        ]
    )
    for split, label in (("train", [0, 0, 1, 1]), ("val", [0, 0, 1, 1])):
        index = json.loads((out / split / "index-rank0.json").read_text())
        assert index["num_clips"] == 4 and index["grid"] == [5, 4, 4] and index["codebook_size"] == 2**18
        shard = load_file(str(out / split / index["shards"][0]["file"]))
        assert shard["indices"].shape == (4, 5, 4, 4) and shard["labels"].tolist() == label
        assert shard["clip_starts"].tolist()[:2] == [0, 7]  # 24-frame videos, 2 evenly spaced 17-frame clips
        assert index["shards"][0]["video_ids"][0].startswith("UCF-101/Biking/v_Biking_g0")


def test_every_ablation_config_is_recommended_in_a_composition():
    composed = {c for args in COMPOSITIONS.values() for c in _configs_of(args)[1:]}
    assert composed == {str(p.relative_to(ROOT)) for p in ABLATIONS}
    assert "-c configs/quickstart.yaml -c configs/ablations/backbone/magvit1.yaml" in COMPOSITIONS  # issue 14


@pytest.mark.parametrize("args", list(COMPOSITIONS.values()), ids=list(COMPOSITIONS))
def test_recommended_composition_trains_a_step(args, request, tmp_path, monkeypatch):
    """Regression: quickstart + magvit1 died at the first step (9-frame windows for a model needing T % 4 == 0)
    and dropped the quickstart's tubelet_shortcut and token_mlp_channels without a word."""
    fresh_workdir(tmp_path, monkeypatch)  # the configs' fixed runs/ folders land in tmp_path
    configs = _configs_of(args)
    if configs[0] not in SMALL:
        pytest.fail(f"add tiny overrides for the base {configs[0]} to SMALL")
    fill = {"tmp": tmp_path, "mini_ucf": request.getfixturevalue("mini_ucf") if "ucf101" in configs[0] else None}
    small = [a.format(**fill) for a in SMALL[configs[0]] + COMMON]
    cli = LfqKitCLI(args=["fit", *args, *small])
    check_composition(cli.config["fit"].as_dict(), configs, _overrides(args), set(_overrides(small)))
    model, metrics = cli.model, cli.trainer.callback_metrics
    assert model.generator_step == 1
    for key in ("train/reconstruction", "val/psnr_per_frame", "val/psnr_pooled"):
        assert key in metrics and torch.isfinite(metrics[key]), key
