"""``lfq-kit convert``: public checkpoints → lfq-kit checkpoints (docs/pretrained.md).

::

    lfq-kit convert open-magvit2 imagenet_256_L.ckpt --output runs/pretrained/open_magvit2_256.ckpt \\
        --config configs/pretrained/open_magvit2_imagenet_256.yaml
    lfq-kit convert videomae checkpoint.pth --output runs/pretrained/videomae_b.ckpt
    lfq-kit convert videomae videomae-base-finetuned-kinetics/ --output runs/pretrained/videomae_b_k400.ckpt

Nothing is downloaded: the user fetches the files from their owners. Files are read without running pickled code
unless ``--trust-pickle`` is given; the format is detected from the file's keys; the converted model runs once on a
fixed input before the output is written (atomically: a failed conversion leaves no file).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["convert_command"]

_TRUST = "read a pickle that holds more than tensors (runs code from the file: only for files you trust)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfq-kit convert", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="family", required=True, metavar="{open-magvit2,videomae}")
    om2 = sub.add_parser("open-magvit2", help="Open-MAGVIT2 (SEED-Voken) LFQ tokenizer .ckpt → VideoTokenizer")
    om2.add_argument("source", help="the Open-MAGVIT2 Lightning checkpoint (.ckpt)")
    om2.add_argument("--output", required=True, help="the lfq-kit VideoTokenizer checkpoint to write")
    om2.add_argument(
        "--config",
        help="architecture config (configs/pretrained/open_magvit2_*.yaml); "
        "default: read from the checkpoint's weights",
    )
    om2.add_argument("--no-ema", action="store_true", help="take the trained weights, not their EMA copy")
    om2.add_argument("--trust-pickle", action="store_true", help=_TRUST)
    mae = sub.add_parser("videomae", help="VideoMAE (MCG-NJU .pth or transformers folder) → lfq-kit checkpoint")
    mae.add_argument("source", help="an MCG-NJU .pth file, or a transformers folder (config.json + weights)")
    mae.add_argument("--output", required=True, help="the lfq-kit checkpoint to write")
    mae.add_argument("--num-heads", type=int, help="encoder heads of an MCG-NJU .pth of a width without a release")
    mae.add_argument("--decoder-heads", type=int, help="decoder heads of such a pretraining .pth")
    mae.add_argument(
        "--clip-size",
        type=int,
        nargs=3,
        metavar=("T", "H", "W"),
        help="clip size of an MCG-NJU .pth (default: the released 16 224 224)",
    )
    mae.add_argument("--trust-pickle", action="store_true", help=_TRUST)
    return parser


def convert_command(argv: Sequence[str]) -> int:
    from ..pretrained.checkpoint_files import LayoutError

    args = _parser().parse_args(list(argv))
    print(f"lfq-kit convert {args.family}: reading {args.source}", file=sys.stderr, flush=True)
    try:
        if args.family == "open-magvit2":
            from ..pretrained.open_magvit2 import convert_open_magvit2

            result = convert_open_magvit2(
                args.source, args.output, config=args.config, ema=not args.no_ema, trust_pickle=args.trust_pickle
            )
        else:
            from ..pretrained.videomae import convert_videomae

            result = convert_videomae(
                args.source,
                args.output,
                trust_pickle=args.trust_pickle,
                num_heads=args.num_heads,
                decoder_heads=args.decoder_heads,
                clip_size=tuple(args.clip_size) if args.clip_size else None,
            )
    except (FileNotFoundError, LayoutError) as err:
        raise SystemExit(f"lfq-kit convert {args.family}: {err}") from None
    print(f"{result.source_format}: {result.tensors} tensors; check: {result.check}")
    print(f"wrote {result.output}")
    return 0
