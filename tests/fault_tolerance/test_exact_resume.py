"""Each model stopped mid-epoch and at an epoch's end, resumed from its checkpoint in a fresh process state, ends
exactly as the uninterrupted run on its REAL data module (random crops, flips, masks, mixup, dropout): every tensor
of the final checkpoint (weights, EMA, optimizer and scheduler states, LeCAM and quantizer buffers, the loops'
progress and the data loader's position) equal. CPU, deterministic mode; tiny models, a checkpoint per step.

The resumed run starts from the uninterrupted run's own checkpoint of that step, which is what a run stopped there
would have written (the kill tests in test_kill_resume.py stop real processes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from resume_runs import assert_resume_is_exact, every_step_checkpoints, tokenizer_run_config, trainer_overrides
from torch.utils.data import DataLoader

from lfq_kit.cli import LfqKitCLI

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY_VIT = {
    "clip_size": [5, 16, 16],
    "tubelet_size": 2,
    "patch_size": 2,
    "first_frame_patch": True,
    "dim": 32,
    "depth": 2,
    "num_heads": 2,
}
CLIPS = [
    "--data.init_args.resolution=16",
    "--data.init_args.frames_per_clip=5",
    "--data.init_args.batch_size=2",
    "--data.init_args.num_workers=0",
    "--data.init_args.clips_per_epoch=6",
]


def _cli_fit(args: list[str], max_steps: int):
    """``fit(folder, ckpt_path)`` of a shipped config with ``args`` and the tiny-run overrides."""

    def fit(folder: Path, ckpt_path: str | None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        cli = LfqKitCLI(args=[*args, *trainer_overrides(folder, max_steps)], run=False)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)

    return fit


def test_tokenizer_with_gan_resumes_exactly_on_the_sample_clips(tmp_path):
    """GAN from the 2nd step, R1 every 2, LeCAM, EMA; random 16 x 16 crops and flips of cached 32 x 32 clips; three
    batches (six optimizer steps: generator and discriminator) per epoch, then validation."""

    def fit(folder: Path, ckpt_path: str | None) -> None:
        config = tokenizer_run_config(folder, max_steps=7)
        config["trainer"]["callbacks"] = every_step_checkpoints(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "fit.yaml").write_text(yaml.safe_dump(config))
        cli = LfqKitCLI(args=["-c", str(folder / "fit.yaml")], run=False)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path)

    full = assert_resume_is_exact(fit, tmp_path, ["step=2.", "step=6."])  # mid-epoch; the epoch's last batch
    state = full["state_dict"]
    assert full["global_step"] == 8 and full["epoch"] == 1
    assert any(k.startswith("ema.") for k in state) and float(state["lecam.ema_real"]) != 0  # all in play
    assert len(full["optimizer_states"]) == 2 and len(full["lr_schedulers"]) == 2


@pytest.fixture(scope="module")
def token_shards(tokenizer_ckpt, tmp_path_factory) -> Path:
    """train/ (8 clips) and val/ (4 clips) shards of the tiny tokenizer's tokens, written by TokenWriter."""
    import lightning as L
    from tiny_tokenizer import RandomClips

    from lfq_kit.callbacks import TokenWriter
    from lfq_kit.models import VideoTokenizer

    root = tmp_path_factory.mktemp("tokens")
    model = VideoTokenizer.load_from_checkpoint(tokenizer_ckpt, map_location="cpu")
    for split, n, seed in (("train", 8, 0), ("val", 4, 1)):
        trainer = L.Trainer(
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[TokenWriter(str(root / split), shard_size=4)],
        )
        trainer.predict(model, DataLoader(RandomClips(n, 5, 16, seed=seed), batch_size=2), return_predictions=False)
    return root


def test_masked_lm_resumes_exactly_on_token_shards(tmp_path, tokenizer_ckpt, token_shards):
    """MaskGIT masking, class dropout and frame-prediction conditioning are random per step; four batches per
    epoch."""
    shards = {"root": str(token_shards), "batch_size": 2, "val_split": "val"}  # the config validates on "holdout"
    data = {"class_path": "TokenDataModule", "init_args": shards}
    fit = _cli_fit(
        [
            "-c",
            str(CONFIGS / "quickstart_mlm.yaml"),
            f"--model.init_args.tokenizer={tokenizer_ckpt}",
            "--model.init_args.clip_size=[5, 16, 16]",
            "--model.init_args.condition_frames=3",
            "--model.init_args.backbone=TransformerTiny",
            "--model.init_args.warmup_steps=2",
            "--model.init_args.decay_steps=6",
            f"--data={json.dumps(data)}",
        ],
        max_steps=6,
    )
    full = assert_resume_is_exact(fit, tmp_path, ["step=2.", "step=4."])
    assert full["global_step"] == 6


def test_videomae_pretraining_resumes_exactly_on_the_sample_clips(tmp_path):
    """Tube masks (90 %) and random clips per step; three batches per epoch."""
    encoder = json.dumps({"class_path": "VideoViTTiny", "init_args": TINY_VIT})
    fit = _cli_fit(
        [
            "-c",
            str(CONFIGS / "quickstart_videomae_pixels.yaml"),
            f"--model.init_args.encoder={encoder}",
            "--model.init_args.decoder_dim=32",
            "--model.init_args.decoder_heads=2",
            "--model.init_args.warmup_steps=2",
            *CLIPS,
        ],
        max_steps=5,
    )
    full = assert_resume_is_exact(fit, tmp_path, ["step=1.", "step=3."])
    assert full["global_step"] == 5


def test_video_classifier_resumes_exactly_on_the_camera_motion_clips(tmp_path):
    """Mixup / cutmix, drop path and random camera paths per step; three batches per epoch."""
    backbone = json.dumps({"class_path": "VideoViTTiny", "init_args": {**TINY_VIT, "drop_path": 0.1}})
    fit = _cli_fit(
        [
            "-c",
            str(CONFIGS / "quickstart_finetune.yaml"),
            f"--model.init_args.backbone={backbone}",
            "--model.init_args.pretrained=null",
            "--model.init_args.warmup_steps=2",
            *CLIPS,
            "--model.init_args.mixup_alpha=0.8",
            "--model.init_args.cutmix_alpha=1.0",
            "--model.init_args.mixup_prob=0.5",  # the Kinetics recipe's (the quickstart has none)
            "--data.init_args.eval_video_frames=7",
            "--data.init_args.eval_segments=1",
        ],
        max_steps=5,
    )
    full = assert_resume_is_exact(fit, tmp_path, ["step=1.", "step=3."])
    assert full["global_step"] == 5
