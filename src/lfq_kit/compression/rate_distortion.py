"""Rate–distortion evaluation: the same frames through lfq-kit (one point per token prior: the tokens, hence the
distortion, are the same, the rate differs) and through H.264, HEVC and AV1 at several crf values; bits per pixel
against PSNR, MS-SSIM and LPIPS, as a table, a CSV and a plot.

Every lfq-kit point is a real round trip: compressed to an ``.lfq`` file and decoded from it. Its rate counts the
whole file except the advisory paths in the header (like the codecs' SEI, metadata a decoder does not need); the
codecs' rate is their elementary stream without SEI (:mod:`lfq_kit.compression.baselines`). Each codec's sizes are
checked to fall as crf rises, so a crf that did not reach the encoder is caught.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

from torch import Tensor

from ..io import write_atomic
from ..models.frozen_tokenizer import FrozenTokenizer
from .baselines import CODECS, encode_with_codec
from .container import HEADER_FIXED_BYTES
from .decoder import decompress_video
from .encoder import compress_video
from .metrics import distortion
from .prior import TokenPrior
from .source import FileSource, SquareResizedSource, TensorSource

__all__ = [
    "CODEC_LABELS",
    "DEFAULT_CRFS",
    "RDPoint",
    "codec_points",
    "load_clip",
    "lfq_points",
    "markdown_table",
    "plot_rd",
    "write_csv",
]

#: crf values per codec by default: they span lfq-kit's rates at 64 × 64.
DEFAULT_CRFS: dict[str, tuple[int, ...]] = {
    "h264": (28, 33, 38, 43, 48, 51),
    "hevc": (28, 33, 38, 43, 48, 51),
    "av1": (35, 45, 55, 63),
}
_LFQ_COLORS = ("black", "tab:red", "tab:purple", "tab:brown", "tab:pink")  # apart from the codecs' C0-C2
CODEC_LABELS = {"h264": "H.264 (libx264)", "hevc": "HEVC (libx265)", "av1": "AV1 (SVT-AV1)"}


class RDPoint(NamedTuple):
    """One rate–distortion point: ``method`` (``"lfq-kit"`` or a codec label), ``setting`` (the prior or the crf),
    the bytes counted, bits per pixel, PSNR (dB), MS-SSIM and LPIPS (None when skipped)."""

    method: str
    setting: str
    bytes: int
    bpp: float
    psnr: float
    ms_ssim: float
    lpips: float | None


def load_clip(
    name: str | os.PathLike, resolution: int | None = None, frames: int | None = None, start: int = 0
) -> tuple[Tensor, Fraction]:
    """uint8 ``(T, H, W, 3)`` frames ``start … start + frames − 1`` of a video (``sample:NAME`` for a bundled clip),
    optionally center-square resized, and its exact frame rate.

    Raises:
        ValueError: fewer frames than asked for.
    """
    src = FileSource(name)
    view = SquareResizedSource(src, resolution) if resolution else src
    count = src.num_frames - start if frames is None else frames
    if count < 1 or start + count > src.num_frames:
        raise ValueError(f"{name} has {src.num_frames} frames; cannot take {count} from frame {start}")
    return view.read(start, count), src.fps


def lfq_points(
    frames: Tensor,
    fps: Fraction,
    tokenizer: FrozenTokenizer,
    priors: dict[str, TokenPrior],
    workdir: str | os.PathLike,
    lpips: object | None = None,
    batch_size: int = 4,
    device: str = "cpu",
) -> list[RDPoint]:
    """Compress ``frames`` with each prior to ``workdir/<name>.lfq``, decompress, and score."""
    work = Path(workdir)
    points = []
    pixels = frames.shape[0] * frames.shape[1] * frames.shape[2]
    for name, prior in priors.items():
        path = work / f"{name}.lfq"
        report = compress_video(TensorSource(frames, fps), path, tokenizer, prior, batch_size=batch_size, device=device)
        decoded = decompress_video(path, None, tokenizer, prior, batch_size, device, keep_video=True).video
        coded = report.file_bytes - (report.header_bytes - HEADER_FIXED_BYTES)  # without the advisory paths
        d = distortion(decoded, frames, lpips)
        points.append(RDPoint("lfq-kit", name, coded, 8 * coded / pixels, d.psnr, d.ms_ssim, d.lpips))
    return points


def codec_points(
    frames: Tensor, fps: Fraction, codec: str, crfs: Sequence[int], lpips: object | None = None
) -> list[RDPoint]:
    """Encode ``frames`` with ``codec`` at each crf, decode, and score.

    Raises:
        RuntimeError: a higher crf did not give a smaller stream (the option did not take effect).
    """
    pixels = frames.shape[0] * frames.shape[1] * frames.shape[2]
    results = [encode_with_codec(frames, codec, crf, fps) for crf in sorted(crfs)]
    for a, b in zip(results, results[1:]):
        if b.stream_bytes >= a.stream_bytes:
            raise RuntimeError(
                f"{CODECS[codec].encoder}: crf {b.crf} gave {b.stream_bytes} bytes, crf {a.crf} "
                f"{a.stream_bytes}: a higher crf must give a smaller stream; the option did not take "
                "effect"
            )
    points = []
    for r in results:
        d = distortion(r.decoded, frames, lpips)
        points.append(
            RDPoint(CODEC_LABELS[codec], f"crf {r.crf}", r.bytes, 8 * r.bytes / pixels, d.psnr, d.ms_ssim, d.lpips)
        )
    return points


def markdown_table(points: Sequence[RDPoint]) -> str:
    """A Markdown table of the points, one row each."""
    rows = [
        "| method | setting | bytes | bpp | PSNR (dB) | MS-SSIM | LPIPS |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for p in points:
        lp = "—" if p.lpips is None else f"{p.lpips:.4f}"
        rows.append(f"| {p.method} | {p.setting} | {p.bytes} | {p.bpp:.4f} | {p.psnr:.2f} | {p.ms_ssim:.4f} | {lp} |")
    return "\n".join(rows)


def write_csv(points: Sequence[RDPoint], path: str | os.PathLike) -> Path:
    """The points as CSV (a header row of the field names), atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(RDPoint._fields)
            writer.writerows(points)

    return write_atomic(path, write)


def plot_rd(points: Sequence[RDPoint], path: str | os.PathLike, title: str = "") -> Path:
    """Bits per pixel against PSNR, MS-SSIM and (when measured) LPIPS, one panel each, as a PNG (matplotlib).

    Raises:
        ModuleNotFoundError: matplotlib is not installed (the message says which extra installs it).
    """
    try:
        import matplotlib
    except ModuleNotFoundError as err:
        message = 'the rate-distortion plot needs matplotlib: pip install -e ".[rd]"'
        raise ModuleNotFoundError(message, name="matplotlib") from err

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("psnr", "PSNR (dB) ↑"), ("ms_ssim", "MS-SSIM ↑")]
    if any(p.lpips is not None for p in points):
        metrics.append(("lpips", "LPIPS ↓"))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], metrics):
        for method in dict.fromkeys(p.method for p in points):
            mine = [p for p in points if p.method == method and getattr(p, key) is not None]
            if method == "lfq-kit":
                for p, color in zip(mine, _LFQ_COLORS):
                    ax.scatter(
                        p.bpp, getattr(p, key), marker="*", s=170, zorder=3, color=color, label=f"lfq-kit {p.setting}"
                    )
            else:
                mine.sort(key=lambda p: p.bpp)
                ax.plot([p.bpp for p in mine], [getattr(p, key) for p in mine], marker="o", label=method)
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    try:
        return write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    finally:
        plt.close(fig)
