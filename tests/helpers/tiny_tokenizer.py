"""A tiny MAGVIT-v2 tokenizer (real backbones, few channels) and clip data for fast module tests."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from lfq_kit.backbones import Magvit2Decoder, Magvit2Encoder, StyleGANDiscriminator3d
from lfq_kit.models import VideoTokenizer
from lfq_kit.quantizers import LFQ

TINY = dict(base_channels=8, channel_multipliers=(1, 2), num_res_blocks=1, temporal_downsample=(True,), num_groups=4)


def tiny_tokenizer(latent: int = 6, discriminator: bool = True, **kwargs) -> VideoTokenizer:
    enc = Magvit2Encoder(out_channels=latent, **TINY)
    dec = Magvit2Decoder(in_channels=latent, **TINY)
    disc = StyleGANDiscriminator3d(base_channels=8, channel_multipliers=(1, 2)) if discriminator else None
    kwargs.setdefault("quantizer", LFQ)
    return VideoTokenizer(enc, dec, discriminator=disc, **kwargs)


class RandomClips(Dataset):
    """Deterministic smooth random clips (B, 3, T, H, W) in [-1, 1] with labels."""

    def __init__(self, n: int = 8, frames: int = 5, size: int = 16, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        low = torch.rand(n, 3, frames, size // 4, size // 4, generator=g) * 2 - 1
        self.videos = torch.nn.functional.interpolate(low, size=(frames, size, size), mode="trilinear")
        self.labels = torch.arange(n) % 3

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.videos[i], "label": self.labels[i], "video_id": f"clip{i}", "clip_start": 0}


class RandomClipData(L.LightningDataModule):
    def __init__(self, n: int = 8, frames: int = 5, size: int = 16, batch_size: int = 2) -> None:
        super().__init__()
        self.n, self.frames, self.size, self.batch_size = n, frames, size, batch_size

    def train_dataloader(self):
        return DataLoader(RandomClips(self.n, self.frames, self.size), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(RandomClips(4, self.frames, self.size, seed=1), batch_size=self.batch_size)

    def test_dataloader(self):
        return DataLoader(RandomClips(4, self.frames, self.size, seed=3), batch_size=self.batch_size)

    def predict_dataloader(self):
        return DataLoader(RandomClips(5, self.frames, self.size, seed=2), batch_size=self.batch_size)
