"""``lfq-kit generate``: class-conditional samples or frame prediction from a trained masked LM, decoded by its
tokenizer and written as MP4 files (PyAV) plus a PNG grid.

::

    lfq-kit generate --mlm runs/quickstart_mlm/checkpoints/last.ckpt --classes 0 1 --output runs/generated
    lfq-kit generate --mlm runs/quickstart_mlm/checkpoints/last.ckpt --frame-prediction \\
        --config configs/quickstart_tokens.yaml --output runs/frame_prediction

Frame prediction keeps the tokens of the first ``--condition-frames`` frames of each validation clip of the
config's data module, generates the rest, and prints the PSNR (mean of per-frame PSNR, dB) and SSIM of the
predicted frames against the real ones, beside a baseline that repeats the last condition frame and the
tokenizer's own reconstruction (the best the tokens allow).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torchmetrics.functional.image import structural_similarity_index_measure

from ..metrics.psnr import frame_psnr

__all__ = ["FramePredictionScores", "generate_command", "frame_prediction_scores"]


class FramePredictionScores(NamedTuple):
    """PSNR (dB, mean of per-frame PSNR, data range 2) and SSIM of predicted frames against the real ones."""

    psnr: float
    ssim: float


def frame_prediction_scores(predicted: Tensor, real: Tensor) -> FramePredictionScores:
    """Scores of ``(B, 3, T, H, W)`` predicted frames in ``[−1, 1]`` against the real ones (same shape)."""
    p = predicted.float().clamp(-1, 1).transpose(1, 2).flatten(0, 1)
    r = real.float().transpose(1, 2).flatten(0, 1)
    psnr = frame_psnr(p, r, data_range=2.0).mean()
    ssim = structural_similarity_index_measure(p, r, data_range=2.0)
    return FramePredictionScores(float(psnr), float(ssim))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfq-kit generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlm", required=True, help="MaskedLM checkpoint (lfq-kit fit writes it)")
    parser.add_argument("--output", required=True, help="folder for the MP4 files and grid.png")
    parser.add_argument("--classes", type=int, nargs="*", default=None, help="class ids (default: unconditional)")
    parser.add_argument("--samples-per-class", type=int, default=1)
    parser.add_argument("--frame-prediction", action="store_true", help="predict frames of the config's clips")
    parser.add_argument("--config", help="YAML whose `data` section gives the clips (frame prediction)")
    parser.add_argument("--num-clips", type=int, default=4, help="clips to predict (frame prediction)")
    parser.add_argument(
        "--condition-frames",
        type=int,
        default=None,
        help="frames given as the condition (default: the model's condition_frames, else 5)",
    )
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--choice-temperature", type=float, default=4.5)
    parser.add_argument("--guidance-scale", type=float, default=0.0)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fps", type=float, default=8.0)
    return parser


def _load_data(config: str) -> Any:
    import yaml
    from jsonargparse import ArgumentParser
    from lightning import LightningDataModule

    import lfq_kit.data  # noqa: F401  (registers the short class names)

    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"config {config!r} not found")
    section = (yaml.safe_load(path.read_text()) or {}).get("data")
    if section is None:
        raise ValueError(f"{config!r} has no `data` section to take clips from")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(LightningDataModule, "data")
    return parser.instantiate_classes(parser.parse_object({"data": section})).data


def _real_clips(data: Any, num_clips: int) -> dict[str, Tensor]:
    data.setup("validate")
    videos, labels = [], []
    for batch in data.val_dataloader():
        videos.append(batch["video"])
        labels.append(torch.as_tensor(batch.get("label", torch.zeros(len(batch["video"])))).long())
        if sum(len(v) for v in videos) >= num_clips:
            break
    return {"video": torch.cat(videos)[:num_clips], "label": torch.cat(labels)[:num_clips]}


def _write(out: Path, videos: Tensor, names: Sequence[str], fps: float) -> None:
    from ..data.video_writer import write_png_grid, write_video

    for video, name in zip(videos, names):
        write_video(out / f"{name}.mp4", video, fps=fps)
    write_png_grid(out / "grid.png", videos)


def generate_command(argv: Sequence[str]) -> int:
    from ..models.masked_lm import MaskedLM

    args = _parser().parse_args(list(argv))
    if not Path(args.mlm).is_file():
        raise SystemExit(
            f"lfq-kit generate: MaskedLM checkpoint {args.mlm!r} not found; train one with "
            "`lfq-kit fit --config configs/quickstart_mlm.yaml`"
        )
    model = MaskedLM.load_from_checkpoint(args.mlm, map_location="cpu").eval()
    tok = model.frozen_tokenizer
    if tok is None:
        raise SystemExit("lfq-kit generate: the MaskedLM has no tokenizer to decode its tokens with")
    generator = torch.Generator().manual_seed(args.seed)
    sampling = dict(
        steps=args.steps,
        choice_temperature=args.choice_temperature,
        guidance_scale=args.guidance_scale,
        temperature=args.temperature,
        top_k=args.top_k,
        generator=generator,
    )
    out = Path(args.output)
    if args.frame_prediction:
        if args.config is None:
            raise SystemExit("lfq-kit generate --frame-prediction needs --config (its `data` section gives the clips)")
        clips = _real_clips(_load_data(args.config), args.num_clips)
        frames = args.condition_frames or model.hparams.get("condition_frames") or 5
        latent = tok.latent_frames(frames)
        ids = tok.encode(clips["video"])
        labels = None if model.num_classes == 0 or model.hparams.val_unconditional else clips["label"]
        predicted = tok.decode(model.generate(labels, condition=ids[:, :latent], **sampling))
        real = clips["video"]
        last = real[:, :, frames - 1 : frames].expand(-1, -1, real.shape[2] - frames, -1, -1)
        rows = {
            "masked LM": frame_prediction_scores(predicted[:, :, frames:], real[:, :, frames:]),
            "copy last condition frame": frame_prediction_scores(last, real[:, :, frames:]),
            "tokenizer reconstruction": frame_prediction_scores(tok.decode(ids)[:, :, frames:], real[:, :, frames:]),
        }
        print(
            f"frame prediction: {frames} condition frames ({latent} latent), {real.shape[2] - frames} predicted, "
            f"{len(real)} clips"
        )
        print(f"| {'predicted frames':<28} | PSNR (dB) | SSIM  |\n| {'-' * 28} | --------- | ----- |")
        for name, s in rows.items():
            print(f"| {name:<28} | {s.psnr:9.2f} | {s.ssim:.3f} |")
        videos = torch.stack([real, predicted], 1).flatten(0, 1)
        names = [f"clip{i}_{kind}" for i in range(len(real)) for kind in ("real", "predicted")]
    else:
        classes = args.classes or []
        labels = torch.tensor([c for c in classes for _ in range(args.samples_per_class)], dtype=torch.long)
        ids = model.generate(labels if classes else None, num_samples=args.samples_per_class, **sampling)
        videos = tok.decode(ids)
        names = (
            [f"class{c}_sample{i}" for c in classes for i in range(args.samples_per_class)]
            if classes
            else [f"sample{i}" for i in range(args.samples_per_class)]
        )
    _write(out, videos, names, args.fps)
    print(f"wrote {len(names)} videos and grid.png to {out}")
    return 0
