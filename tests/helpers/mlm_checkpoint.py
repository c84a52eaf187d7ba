"""A real masked-LM checkpoint made the way users make one (LightningCLI ``fit`` with configs/quickstart_mlm.yaml),
on the tokens of the tiny tokenizer (helpers/tokenizer_checkpoint.py): for ``lfq-kit generate`` and the masked-LM
compression prior.

The tiny transformer trains 2 steps on random 5 × 16 × 16 clips (token grid 3 × 8 × 8 of 2^18 ids, two 512-way
sub-token heads) with frame prediction on (3 condition frames), so ``MaskedLM.load_from_checkpoint`` rebuilds it from
the saved config, as it does for the quickstart's checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from lfq_kit.cli import LfqKitCLI

ROOT = Path(__file__).resolve().parents[2]
DATA = {"class_path": "tiny_tokenizer.RandomClipData", "init_args": {"frames": 5, "size": 16, "batch_size": 2}}


def make_mlm_checkpoint(folder: Path, tokenizer_ckpt: Path) -> Path:
    """Train the tiny masked LM 2 steps through the CLI on ``tokenizer_ckpt``'s tokens; save ``folder/mlm.ckpt``."""
    folder.mkdir(parents=True, exist_ok=True)
    args = [
        "-c",
        str(ROOT / "configs" / "quickstart_mlm.yaml"),
        f"--model.init_args.tokenizer={tokenizer_ckpt}",
        "--model.init_args.clip_size=[5, 16, 16]",
        "--model.init_args.condition_frames=3",
        "--model.init_args.backbone=TransformerTiny",
        "--trainer.max_steps=2",
        "--trainer.logger=false",
        f"--trainer.default_root_dir={folder}",
        "--trainer.callbacks=[]",
        "--trainer.enable_checkpointing=false",
        "--trainer.limit_val_batches=0",
        f"--data={yaml.safe_dump(DATA)}",
    ]
    cli = LfqKitCLI(args=args, run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    path = folder / "mlm.ckpt"
    cli.trainer.save_checkpoint(path)
    return path
