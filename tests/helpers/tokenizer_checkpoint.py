"""A real tokenizer checkpoint made the way users make one (LightningCLI ``fit``), for the token consumers' tests.

The tiny MAGVIT-v2 tokenizer (LFQ with 18 bits, causal, 2x temporal and spatial compression) trains one step on
random clips, so ``VideoTokenizer.load_from_checkpoint`` rebuilds it from the saved config, as it does for
``configs/quickstart.yaml``'s checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lfq_kit.cli import LfqKitCLI

TINY_BACKBONE = {
    "base_channels": 8,
    "channel_multipliers": [1, 2],
    "num_res_blocks": 1,
    "temporal_downsample": [True],
    "num_groups": 4,
}


def tokenizer_config(folder: Path, latent: int = 18, frames: int = 5, size: int = 16, seed: int = 0) -> dict:
    return {
        "seed_everything": seed,
        "trainer": {
            "default_root_dir": str(folder),
            "accelerator": "cpu",
            "devices": 1,
            "max_steps": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "limit_val_batches": 0,
        },
        "model": {
            "class_path": "lfq_kit.models.VideoTokenizer",
            "init_args": {
                "encoder": {"class_path": "Magvit2Encoder", "init_args": {"out_channels": latent, **TINY_BACKBONE}},
                "decoder": {"class_path": "Magvit2Decoder", "init_args": {"in_channels": latent, **TINY_BACKBONE}},
                "quantizer": {"class_path": "LFQ"},
                "discriminator": None,
                "ema_decay": None,
            },
        },
        "data": {"class_path": "tiny_tokenizer.RandomClipData", "init_args": {"frames": frames, "size": size}},
    }


def make_tokenizer_checkpoint(folder: Path, latent: int = 18, seed: int = 0) -> Path:
    """Train the tiny tokenizer one step through the CLI and save ``folder/tokenizer.ckpt``."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "tokenizer.yaml"
    config.write_text(yaml.safe_dump(tokenizer_config(folder, latent, seed=seed)))
    cli = LfqKitCLI(args=["-c", str(config)], run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    path = folder / "tokenizer.ckpt"
    cli.trainer.save_checkpoint(path)
    return path
