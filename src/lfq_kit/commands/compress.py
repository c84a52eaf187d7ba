"""``lfq-kit compress``, ``lfq-kit decompress`` and ``lfq-kit fit-prior``: videos as tokenizer tokens in an ``.lfq``
file, entropy-coded under a prior (see docs/compression.md).

::

    lfq-kit fit-prior --tokenizer runs/quickstart/checkpoints/last.ckpt sample:bikes.mp4 sample:bigbuckbunny.mp4 \\
        --resolution 64
    lfq-kit compress sample:carphone_pristine.mp4 runs/compressed/carphone.lfq \\
        --tokenizer runs/quickstart/checkpoints/last.ckpt --prior factorized --resolution 64
    lfq-kit decompress runs/compressed/carphone.lfq runs/compressed/carphone.mp4

Audio is not carried: only the first video stream is compressed.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

__all__ = ["compress_command", "decompress_command", "fit_prior_command"]

_AUDIO = "audio is not carried: only the first video stream is compressed"


def _source(name: str, resolution: int | None):
    from ..compression.source import FileSource, SquareResizedSource

    src = FileSource(name)
    return SquareResizedSource(src, resolution) if resolution else src


def _compress_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lfq-kit compress",
        description="Compress a video (any format PyAV reads; "
        f"sample:NAME for a bundled clip) into an .lfq file of tokenizer tokens; {_AUDIO}.",
    )
    p.add_argument("input", help="video file, or sample:carphone_pristine.mp4 (etc.) for a bundled clip")
    p.add_argument("output", help="the .lfq file to write (written atomically)")
    p.add_argument("--tokenizer", help="tokenizer checkpoint (with --prior mlm: default the masked LM's tokenizer)")
    p.add_argument(
        "--prior",
        choices=["packed", "factorized", "mlm"],
        default="packed",
        help="packed: log2(K) bits per token; factorized: learned sub-token marginals (--prior-file); "
        "mlm: the masked LM as a context model (--mlm)",
    )
    p.add_argument("--prior-file", help="factorized prior (default: TOKENIZER.prior.safetensors, from fit-prior)")
    p.add_argument("--mlm", help="masked LM checkpoint for --prior mlm")
    p.add_argument("--mlm-steps", type=int, default=12, help="coding steps of the masked LM prior (12)")
    p.add_argument("--order-seed", type=int, default=0, help="seed of the masked LM prior's coding order (0)")
    p.add_argument(
        "--resolution",
        type=int,
        help="cut the center square and resize it to this size first (the "
        "quickstart models are trained at 64); the decompressed video then has this size",
    )
    p.add_argument("--chunk-frames", type=int, help="frames per chunk (default 17, or the masked LM's clip length)")
    p.add_argument(
        "--batch-size", type=int, default=4, help="chunks processed together (memory); no effect on the file"
    )
    p.add_argument("--device", default="cpu", help="device of the tokenizer and the masked LM (cpu, cuda)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _prior_for_compress(args, tokenizer_path: str | None):
    from ..compression.factorized import FactorizedPrior, sidecar_path
    from ..compression.mlm_prior import MaskedLMPrior
    from ..models.frozen_tokenizer import FrozenTokenizer

    if args.prior == "mlm":
        if not args.mlm:
            raise SystemExit("lfq-kit compress: --prior mlm needs --mlm MLM.ckpt")
        prior = MaskedLMPrior.load(args.mlm, steps=args.mlm_steps, seed=args.order_seed, device=args.device)
        tok = FrozenTokenizer(tokenizer_path) if tokenizer_path else prior.model.frozen_tokenizer
        if tok is None:
            raise SystemExit("lfq-kit compress: the masked LM names no tokenizer; pass --tokenizer")
        return tok, prior
    if not tokenizer_path:
        raise SystemExit("lfq-kit compress: --tokenizer TOKENIZER.ckpt is required")
    tok = FrozenTokenizer(tokenizer_path)
    if args.prior == "factorized":
        return tok, FactorizedPrior.load(args.prior_file or sidecar_path(tokenizer_path), tokenizer_hash=tok.hash)
    return tok, None


def compress_command(argv: Sequence[str]) -> int:
    from ..compression.encoder import compress_video

    args = _compress_parser().parse_args(list(argv))
    try:
        tok, prior = _prior_for_compress(args, args.tokenizer)
        src = _source(args.input, args.resolution)
        if src.has_audio:
            print(f"note: {args.input} has audio; {_AUDIO}")
        report = compress_video(
            src, args.output, tok, prior, args.chunk_frames, args.batch_size, args.device, progress=not args.no_progress
        )
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"lfq-kit compress: {err}") from err
    kind = prior.kind if prior is not None else "packed"
    print(
        f"wrote {report.path}: {report.num_frames} frames of {report.width} × {report.height}, {report.num_chunks} "
        f"chunks, {report.file_bytes} bytes, {report.bpp:.4f} bpp ({kind} prior, "
        f"{8 * report.payload_bytes / report.num_tokens:.2f} bits/token); tokenizer {report.tokenizer_seconds:.1f} s, "
        f"coding {report.coding_seconds:.1f} s"
    )
    return 0


def _decompress_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lfq-kit decompress",
        description=f"Decode an .lfq file to a video at its original size, frame count and rate (H.264 MP4); {_AUDIO}.",
    )
    p.add_argument("input", help="the .lfq file")
    p.add_argument("output", help="the video to write (.mp4; written atomically)")
    p.add_argument("--tokenizer", help="tokenizer checkpoint (default: the path stored in the file)")
    p.add_argument("--prior-file", help="factorized prior (default: the path stored in the file)")
    p.add_argument("--mlm", help="masked LM checkpoint (default: the path stored in the file)")
    p.add_argument("--batch-size", type=int, default=4, help="chunks decoded together (memory); same tokens")
    p.add_argument("--device", default="cpu", help="device of the tokenizer and the masked LM")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality of the written video (18; 0 is lossless)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def decompress_command(argv: Sequence[str]) -> int:
    from ..compression.decoder import decompress_video

    args = _decompress_parser().parse_args(list(argv))
    try:
        report = decompress_video(
            args.input,
            args.output,
            args.tokenizer,
            args.mlm or args.prior_file,
            args.batch_size,
            args.device,
            progress=not args.no_progress,
            crf=args.crf,
        )
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"lfq-kit decompress: {err}") from err
    print(
        f"wrote {report.output}: {report.num_frames} frames of {report.width} × {report.height} at {report.fps} fps "
        f"({report.num_chunks} chunks; coding {report.coding_seconds:.1f} s, "
        f"tokenizer {report.tokenizer_seconds:.1f} s)"
    )
    return 0


def _fit_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lfq-kit fit-prior",
        description="Fit the factorized prior (sub-token "
        "marginals) of a tokenizer on the tokens of some videos or token shards.",
    )
    p.add_argument("videos", nargs="*", help="training videos (sample:NAME for a bundled clip)")
    p.add_argument("--tokenizer", required=True, help="tokenizer checkpoint")
    p.add_argument("--tokens", nargs="*", default=[], help="token shard folders (lfq-kit predict with TokenWriter)")
    p.add_argument("--output", help="prior file (default: TOKENIZER.prior.safetensors, beside the checkpoint)")
    p.add_argument("--groups", type=int, help="sub-token groups (default: 2 for 2^18 ids, S = 512)")
    p.add_argument(
        "--resolution",
        type=int,
        help="center square resized to this size (as compress --resolution); each video is held in memory at this size",
    )
    p.add_argument("--chunk-frames", type=int, help="frames per chunk (default 17)")
    p.add_argument(
        "--stride",
        type=int,
        help="frames between chunk starts: below --chunk-frames, overlapping chunks "
        "give more (different) tokens of the same videos (default: back to back, as compress cuts them)",
    )
    p.add_argument("--alpha", type=float, default=32.0, help="pull of the conditionals toward the marginals (32)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu")
    return p


def _in_memory(name: str, resolution: int | None):
    """A video decoded once, whole, into memory (at ``resolution`` when given): overlapping chunks then cost no
    repeated seeks, which matter for files with few keyframes."""
    from ..compression.source import FileSource, TensorSource
    from ..data.decode import read_video
    from ..data.transforms import resize, square_crop

    src = FileSource(name)

    def small(frame):
        x = torch.from_numpy(frame)[None]
        return resize(square_crop(x).permute(0, 3, 1, 2), resolution).permute(0, 2, 3, 1)[0] if resolution else x[0]

    frames = read_video(src.path, src.num_frames, src.info.start_pts, map_frame=small)
    return TensorSource(frames.contiguous(), src.fps, name)


def _video_tokens(
    tok,
    names: Sequence[str],
    resolution: int | None,
    chunk_frames: int | None,
    stride: int | None,
    batch_size: int,
    device: str,
) -> Iterator[Tensor]:
    """Token ids of chunks of every video, a batch at a time: compress's chunks, or with ``stride`` every full chunk
    starting at a multiple of ``stride``."""
    import math

    from ..compression.encoder import batches
    from ..compression.layout import ChunkSpan, default_chunk_frames, pad_clip, plan_chunks

    if stride is not None and stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    for name in names:
        src = _in_memory(name, resolution)
        s = tok.spatial_compression
        ph, pw = s * math.ceil(src.height / s), s * math.ceil(src.width / s)
        frames = chunk_frames or default_chunk_frames(tok.temporal_compression, tok.causal)
        spans = plan_chunks(src.num_frames, frames, tok.temporal_compression, tok.causal)
        if stride is not None and src.num_frames >= frames:
            starts = range(0, src.num_frames - frames + 1, stride)
            spans = [ChunkSpan(i, start, frames, frames) for i, start in enumerate(starts)]
        for batch in batches(spans, batch_size):
            pixels = src.read(batch[0].start, batch[-1].start + batch[-1].frames - batch[0].start)
            clips = [pad_clip(pixels[c.start - batch[0].start :][: c.frames], c.padded_frames, ph, pw) for c in batch]
            with torch.no_grad():
                yield tok.encode(torch.stack(clips).to(device)).cpu()


def fit_prior_command(argv: Sequence[str]) -> int:
    import math

    from ..compression.factorized import fit_factorized_prior, sidecar_path
    from ..data.tokens import read_token_split
    from ..models.frozen_tokenizer import FrozenTokenizer

    args = _fit_parser().parse_args(list(argv))
    if not args.videos and not args.tokens:
        raise SystemExit("lfq-kit fit-prior: give training videos or --tokens folders")
    try:
        tok = FrozenTokenizer(args.tokenizer)
        shards = []
        for folder in args.tokens:
            header, tensors, _ = read_token_split(folder)
            if header["tokenizer_hash"] not in (None, tok.hash):
                raise ValueError(
                    f"the token shards in {folder!r} were written by tokenizer "
                    f"{header['tokenizer_hash'][:12]}, not {tok.hash[:12]}"
                )
            shards.append(tensors["indices"])
        batches = list(
            _video_tokens(
                tok, args.videos, args.resolution, args.chunk_frames, args.stride, args.batch_size, args.device
            )
        )
        tokens = [*shards, *batches]
        prior = fit_factorized_prior(tokens, tok.codebook_size, tok.hash, args.groups, args.alpha)
        out = prior.save(args.output or sidecar_path(args.tokenizer), sources=[*args.videos, *args.tokens])
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"lfq-kit fit-prior: {err}") from err
    bits = sum(sum(prior.ideal_bits(t.reshape(len(t), -1))) for t in tokens) / prior.num_tokens  # per batch
    print(
        f"wrote {out}: sub-token model ({prior.num_groups} × {prior.sub_vocab} values) fitted on {prior.num_tokens} "
        f"tokens; {bits:.2f} bits/token on them (packed: {math.ceil(math.log2(tok.codebook_size))})"
    )
    return 0
