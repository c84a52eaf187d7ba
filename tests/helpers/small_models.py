"""The smallest constructor of every registered LightningModule (``lfq_kit.registry.MODELS``) with data it trains on,
for the model contract test: a few hundred parameters to a few thousand, steps of milliseconds on CPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import lightning as L
import torch
from random_tokens import RandomTokens, RandomValTokens
from tiny_tokenizer import TINY, RandomClipData

from lfq_kit.backbones import Magvit2Decoder, Magvit2Encoder, StyleGANDiscriminator3d, TransformerTiny, VideoViT
from lfq_kit.models import MaskedLM, VideoClassifier, VideoMAEPretraining, VideoTokenizer

VIT = dict(clip_size=(4, 16, 16), tubelet_size=2, patch_size=8, dim=16, depth=2, num_heads=2)


class SmallModel(NamedTuple):
    """``parts()``: fresh modules (what ``load_from_checkpoint`` needs again: they are not in hparams);
    ``build(**parts, **settings)``: the model; ``train_data()`` / ``val_data()``: data modules."""

    parts: Callable[[], dict[str, Any]]
    build: Callable[..., L.LightningModule]
    train_data: Callable[[], L.LightningDataModule]
    val_data: Callable[[], L.LightningDataModule]


def _tokenizer_parts() -> dict[str, Any]:
    return {
        "encoder": Magvit2Encoder(out_channels=6, **TINY),
        "decoder": Magvit2Decoder(in_channels=6, **TINY),
        "discriminator": StyleGANDiscriminator3d(base_channels=8, channel_multipliers=(1, 2)),
    }


SMALL_MODELS: dict[str, SmallModel] = {
    "VideoTokenizer": SmallModel(
        _tokenizer_parts, lambda **kw: VideoTokenizer(**{"disc_start": 0, **kw}), RandomClipData, RandomClipData
    ),
    "MaskedLM": SmallModel(
        lambda: {"backbone": TransformerTiny(dim=16, depth=1, num_heads=2)},
        lambda **kw: MaskedLM(**{"grid": (2, 2, 4), "codebook_size": 2**18, "warmup_steps": 0, **kw}),
        lambda: RandomTokens(count=4, batch_size=2),
        lambda: RandomValTokens(count=4, batch_size=2),
    ),
    "VideoMAEPretraining": SmallModel(
        lambda: {"encoder": VideoViT(**VIT)},
        lambda **kw: VideoMAEPretraining(
            **{
                "decoder_dim": 8,
                "decoder_depth": 1,
                "decoder_heads": 2,
                "mask_ratio": 0.5,
                "warmup_steps": 0,
                "lr": 1e-3,
                **kw,
            }
        ),
        lambda: RandomClipData(n=4, frames=4),
        lambda: RandomClipData(n=4, frames=4),
    ),
    "VideoClassifier": SmallModel(
        lambda: {"backbone": VideoViT(**VIT)},
        lambda **kw: VideoClassifier(**{"num_classes": 3, "warmup_steps": 0, "lr": 1e-3, **kw}),
        lambda: RandomClipData(n=4, frames=4),
        lambda: RandomClipData(n=4, frames=4),
    ),
}


def small_model(name: str, **settings: Any) -> L.LightningModule:
    """The small ``name`` model (seeded), with ``settings`` overriding its init arguments."""
    torch.manual_seed(0)
    spec = SMALL_MODELS[name]
    return spec.build(**spec.parts(), **settings)
