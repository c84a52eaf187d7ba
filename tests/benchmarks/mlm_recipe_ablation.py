"""Which of MAGVIT's and MaskGIT's masked-LM settings help on the quickstart (docs/generation.md, "The recipe").

Run after the quickstart tokenizer and its token shards (`lfq-kit fit --config configs/quickstart.yaml`, then
`lfq-kit predict --config configs/quickstart_tokens.yaml`)::

    python tests/benchmarks/mlm_recipe_ablation.py --steps 500 --variants today magvit \
        --set=--model.init_args.backbone.init_args.dim=128

Each variant trains ``configs/quickstart_mlm.yaml``'s model from the same seed for ``--steps`` steps on the
training shards (no checkpoints, no logger), then prints its bits per masked token on the in-distribution holdout
(``runs/quickstart_tokens/holdout``, true class) at 10 % and 90 % masked, their difference, the last training loss
and the wall time. ``--set=--model.init_args.X=V`` (repeatable) overrides the config for every variant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlm_quickstart_figures import bits_per_masked_token, load_split  # noqa: E402

from lfq_kit.cli import LfqKitCLI  # noqa: E402

RECIPE = {
    "mask_weight": 1.0,
    "refine_weight": 1.0,
    "recons_weight": 0.1,
    "loss_normalization": "sequence",
    "mask_ratio_per": "batch",
    "label_smoothing": 1e-4,
    "input_norm": True,
    "head_transform": True,
}
TODAY = {
    "mask_weight": 1.0,
    "refine_weight": 0.0,
    "recons_weight": 0.0,
    "loss_normalization": "token",
    "mask_ratio_per": "example",
    "label_smoothing": 0.1,
    "input_norm": False,
    "head_transform": False,
}
VARIANTS = {
    "today": TODAY,
    "magvit": RECIPE,
    "magvit-masked-only": {**RECIPE, "refine_weight": 0.0, "recons_weight": 0.0},
    "magvit-ls0.1": {**RECIPE, "label_smoothing": 0.1},
    "magvit-no-heads": {**RECIPE, "input_norm": False, "head_transform": False},
    "magvit-per-example": {**RECIPE, "mask_ratio_per": "example"},
    "magvit-per-token": {**RECIPE, "loss_normalization": "token"},
    "today+heads": {**TODAY, "input_norm": True, "head_transform": True},
    "today-ls": {**TODAY, "label_smoothing": 1e-4},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/quickstart_mlm.yaml")
    parser.add_argument("--tokens", default="runs/quickstart_tokens")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--variants", nargs="+", default=["today", "magvit"], choices=sorted(VARIANTS))
    parser.add_argument("--set", action="append", default=[], help="an extra CLI override for every variant")
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    holdout, holdout_labels = load_split(Path(args.tokens) / "holdout")
    print("| variant | 10 % | 90 % | 90 % − 10 % | train/loss | wall |\n| --- | --- | --- | --- | --- | --- |")
    for name in args.variants:
        settings = [
            f"--model.init_args.{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in VARIANTS[name].items()
        ]
        cli = LfqKitCLI(
            args=[
                "-c",
                args.config,
                *settings,
                *args.set,
                f"--trainer.max_steps={args.steps}",
                f"--model.init_args.decay_steps={args.steps}",
                "--trainer.max_time=null",
                "--trainer.logger=false",
                "--trainer.callbacks=[]",
                "--trainer.enable_checkpointing=false",
                "--trainer.limit_val_batches=0",
                "--trainer.enable_progress_bar=false",
                "--trainer.enable_model_summary=false",
            ],
            run=False,
        )
        start = time.perf_counter()
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        wall = time.perf_counter() - start
        model = cli.model.eval()
        b10, b90 = (bits_per_masked_token(model, holdout, holdout_labels, r, args.repeats) for r in (0.1, 0.9))
        loss = float(cli.trainer.callback_metrics.get("train/loss", float("nan")))
        print(f"| {name} | {b10:.2f} | {b90:.2f} | {b90 - b10:.2f} | {loss:.2f} | {wall:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
