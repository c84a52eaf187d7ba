"""``lfq-kit rd``: rate–distortion of lfq-kit's payloads against H.264, HEVC and AV1 on the same frames (see
docs/compression.md)::

    lfq-kit rd --tokenizer runs/quickstart/checkpoints/last.ckpt --mlm runs/quickstart_mlm/checkpoints/last.ckpt \\
        --input sample:carphone_pristine.mp4 --resolution 64 --frames 119 --output runs/rd

Writes ``rd.md`` (the table), ``rd.csv`` and ``rd.png`` (bpp against PSNR, MS-SSIM and LPIPS) to ``--output``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["rd_command"]


def _parser() -> argparse.ArgumentParser:
    from ..compression.rate_distortion import DEFAULT_CRFS

    p = argparse.ArgumentParser(
        prog="lfq-kit rd",
        description="Rate–distortion: lfq-kit (each prior) against "
        "libx264, libx265 and SVT-AV1 at several crf values, on the same frames.",
    )
    p.add_argument("--tokenizer", required=True, help="tokenizer checkpoint")
    p.add_argument("--input", default="sample:carphone_pristine.mp4", help="video (default: the held-out sample clip)")
    p.add_argument("--resolution", type=int, default=64, help="center square resized to this size (64; 0: as is)")
    p.add_argument("--frames", type=int, help="frames to take (default: all)")
    p.add_argument("--start", type=int, default=0, help="first frame")
    p.add_argument("--prior-file", help="factorized prior (default: TOKENIZER.prior.safetensors when it exists)")
    p.add_argument("--mlm", help="masked LM checkpoint: adds the mlm prior")
    p.add_argument("--mlm-steps", type=int, default=12)
    p.add_argument("--codecs", nargs="*", default=list(DEFAULT_CRFS), choices=list(DEFAULT_CRFS))
    for codec, crfs in DEFAULT_CRFS.items():
        p.add_argument(f"--crf-{codec}", type=int, nargs="+", default=list(crfs), help=f"crf values ({crfs})")
    p.add_argument(
        "--lpips-weights",
        help="local torchvision AlexNet weights for LPIPS (default: torch's hub cache "
        "when it holds them; else LPIPS is skipped)",
    )
    p.add_argument("--output", default="runs/rd", help="folder for rd.md, rd.csv, rd.png and the .lfq files")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu")
    return p


def rd_command(argv: Sequence[str]) -> int:
    from ..compression import rate_distortion as rd
    from ..compression.factorized import FactorizedPrior, sidecar_path
    from ..compression.metrics import lpips_weights
    from ..compression.mlm_prior import MaskedLMPrior
    from ..compression.packed import PackedPrior
    from ..io import write_atomic
    from ..models.frozen_tokenizer import FrozenTokenizer

    args = _parser().parse_args(list(argv))
    out = Path(args.output)
    notes = []
    try:
        tok = FrozenTokenizer(args.tokenizer)
        frames, fps = rd.load_clip(args.input, args.resolution or None, args.frames, args.start)
        priors = {"packed": PackedPrior(tok.codebook_size)}
        prior_file = Path(args.prior_file or sidecar_path(args.tokenizer))
        if prior_file.is_file():
            priors["factorized"] = FactorizedPrior.load(prior_file, tokenizer_hash=tok.hash)
        else:
            notes.append(f"factorized prior skipped: no {prior_file} (fit one with `lfq-kit fit-prior`)")
        if args.mlm:
            priors["mlm"] = MaskedLMPrior.load(args.mlm, steps=args.mlm_steps, device=args.device)
        weights = lpips_weights("alex", args.lpips_weights)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"lfq-kit rd: {err}") from err
    lpips = None
    if weights is None:
        notes.append("LPIPS skipped: no local AlexNet weights (pass --lpips-weights alexnet-owt-7be5be79.pth)")
    else:
        from ..losses.perceptual import LPIPSLoss

        lpips = LPIPSLoss("alex", weights)
    t, h, w = frames.shape[:3]
    print(
        f"{args.input}: {t} frames of {w} × {h} at {fps} fps; priors {', '.join(priors)}; "
        f"codecs {', '.join(args.codecs)}"
    )
    points = rd.lfq_points(frames, fps, tok, priors, out, lpips, args.batch_size, args.device)
    for codec in args.codecs:
        points += rd.codec_points(frames, fps, codec, getattr(args, f"crf_{codec}"), lpips)
    table = rd.markdown_table(points)
    title = f"{Path(str(args.input)).name}, {t} frames of {w} × {h}"
    report = f"{title}\n\n{table}\n" + "".join(f"\n{n}\n" for n in notes)
    write_atomic(out / "rd.md", lambda tmp: tmp.write_text(report))
    rd.write_csv(points, out / "rd.csv")
    rd.plot_rd(points, out / "rd.png", title)
    print(table)
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out / 'rd.md'}, {out / 'rd.csv'} and {out / 'rd.png'}")
    return 0
