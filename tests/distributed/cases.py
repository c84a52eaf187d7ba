"""The models and fixed data of the 1-vs-2-process equivalence tests, shared by the worker script (which runs
them under Lightning) and the tests (which compare what it wrote).

Data: ``N`` fixed samples; Lightning's ``DistributedSampler`` (no shuffle) gives rank ``r`` the samples
``r, r + W, r + 2W, ...``, so with per-rank batch ``b`` the union of both ranks' first batches is exactly the
1-process batch of ``2b`` (samples ``0 … 2b − 1``). Every sample carries its dataset ``index``.

Random masks: the models draw masks from the global RNG, so two ranks seeded alike draw the same masks for
different samples and no 2-process run can reproduce the 1-process masks. For an exact comparison the workers
replace the mask functions by :func:`per_sample_cosine_mask` / :func:`per_sample_tube_mask`, which draw each
sample's mask from a generator seeded by its dataset index (and the ratio), independent of rank and batch.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "helpers"))

from tiny_tokenizer import tiny_tokenizer  # noqa: E402

from lfq_kit.backbones import BidirectionalTransformer, VideoViT  # noqa: E402
from lfq_kit.models import MaskedLM, VideoClassifier, VideoMAEPretraining  # noqa: E402
from lfq_kit.models import _maskgit as maskgit  # noqa: E402
from lfq_kit.models import _tube_masking as tube_masking
from lfq_kit.quantizers import VQ  # noqa: E402

CASES = ("tokenizer_lfq", "tokenizer_vq", "mlm", "mlm_weighted", "videomae", "classifier")
TRAIN_BATCH = 2  # per rank; the 1-process run takes 2 x this
GRID = (2, 4, 4)
CODEBOOK = 64
CLIP = (4, 16, 16)
NUM_CLASSES = 4
CLASSIFIER_VIDEOS = 5  # odd: a padding sampler would count one video twice over 2 ranks
SGD_LR = 0.05  # plain SGD, so the updated weights move with the gradients themselves (Adam's first step ~ sign)

_sample_index: dict[str, torch.Tensor] = {}
"""The dataset indices of the batch being processed (set by the worker's callback), read by the mask patches."""


def _videos(n: int, seed: int, size: tuple[int, int, int] = (5, 16, 16)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t, h, w = size
    low = torch.rand(n, 3, t, h // 4, w // 4, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(low, size=size, mode="trilinear")


class FixedSamples(Dataset):
    """``n`` fixed samples (dicts with ``index``, ``label``, and ``video`` or ``indices``); ``kind`` picks them."""

    def __init__(self, kind: str, n: int, seed: int) -> None:
        self.kind, self.n = kind, n
        g = torch.Generator().manual_seed(seed + 100)
        self.labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
        if kind == "mlm":
            self.ids = torch.randint(0, CODEBOOK, (n, *GRID), generator=g)
        else:
            self.videos = _videos(n, seed, (5, 16, 16) if kind.startswith("tokenizer") else CLIP)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {"index": i, "label": self.labels[i]}
        if self.kind == "mlm":
            item["indices"] = self.ids[i]
        else:
            item["video"] = self.videos[i]
        if self.kind == "classifier":  # one view per video: multi-view keys for the test loop
            item.update(video_index=i, view_index=0)
        return item


def _sgd(params):
    return torch.optim.SGD(params, lr=SGD_LR)


class _SGDMixin:
    """Plain SGD over every trainable parameter instead of the model's AdamW: Adam's first update is about
    ``lr · sign(g)``, which hides gradient differences and amplifies float noise where ``|g| ~ eps``."""

    def configure_optimizers(self):
        return _sgd([p for p in self.parameters() if p.requires_grad])


class SGDVideoMAE(_SGDMixin, VideoMAEPretraining):
    pass


class SGDVideoClassifier(_SGDMixin, VideoClassifier):
    pass


def build_model(case: str) -> torch.nn.Module:
    """The case's model, built from the current RNG state (seed it first)."""
    if case == "tokenizer_lfq":
        return tiny_tokenizer(
            disc_start=0,
            generator_optimizer=_sgd,
            discriminator_optimizer=_sgd,
            gradient_clip_val=None,
            ema_decay=0.9,
            lecam_decay=0.5,
        )
    if case == "tokenizer_vq":
        return tiny_tokenizer(
            quantizer=partial(VQ, codebook_size=16, ema_update=True, ema_decay=0.5),
            disc_start=0,
            generator_optimizer=_sgd,
            discriminator_optimizer=_sgd,
            gradient_clip_val=None,
            ema_decay=0.9,
            lecam_decay=0.5,
        )
    if case in ("mlm", "mlm_weighted"):
        backbone = BidirectionalTransformer(dim=32, depth=2, num_heads=2, dropout=0.0, attn_dropout=0.0)
        # mlm_weighted: every position counts (weighted), so the global weight total scales each rank's loss
        recipe = {"recons_weight": 0.1, "input_norm": True, "head_transform": True} if case == "mlm_weighted" else {}
        return MaskedLM(
            backbone,
            grid=GRID,
            codebook_size=CODEBOOK,
            num_groups=2,
            num_classes=NUM_CLASSES,
            class_dropout=0.0,
            warmup_steps=0,
            optimizer=_sgd,
            **recipe,
        )
    vit = VideoViT(clip_size=CLIP, tubelet_size=2, patch_size=8, dim=32, depth=2, num_heads=2)
    if case == "videomae":
        return SGDVideoMAE(vit, mask_ratio=0.5, decoder_dim=32, decoder_depth=1, decoder_heads=2)
    if case == "classifier":
        # mixup/CutMix pair samples inside the batch: a 2-rank run pairs other samples than 1 rank does.
        return SGDVideoClassifier(
            vit, num_classes=NUM_CLASSES, layer_decay=1.0, mixup_alpha=0.0, cutmix_alpha=0.0, label_smoothing=0.1
        )
    raise ValueError(f"unknown case {case!r}; one of {CASES}")


def datasets(case: str) -> tuple[FixedSamples, FixedSamples]:
    """(train, validation) sets: ``2 · TRAIN_BATCH`` training samples; validation even (8), odd for the classifier."""
    kind = "tokenizer" if case.startswith("tokenizer") else "mlm" if case.startswith("mlm") else case
    val = CLASSIFIER_VIDEOS if case == "classifier" else 8
    return FixedSamples(kind, 2 * TRAIN_BATCH, seed=0), FixedSamples(kind, val, seed=1)


def evaluation_loader(dataset: FixedSamples, trainer) -> torch.utils.data.DataLoader:
    """The kit's evaluation loader (:func:`lfq_kit.data.loaders.build_loader`: in order, sharded without
    padding, every item read once over all ranks), batch ``TRAIN_BATCH`` per rank."""
    from lfq_kit.data.loaders import build_loader

    return build_loader(dataset, TRAIN_BATCH, train=False, trainer=trainer)


# -- masks as a function of the sample ---------------------------------------------------------------------

_original_cosine_mask = maskgit.cosine_mask
_original_tube_mask = tube_masking.tube_mask


def _generator(index: int, ratio: float | None) -> torch.Generator:
    return torch.Generator().manual_seed(7919 * int(index) + int(1000 * (ratio or 0.0)))


def per_sample_cosine_mask(ids, mask_id, generator=None, ratio=None, maskable=None):
    """:func:`lfq_kit.models._maskgit.cosine_mask`, each row drawn from its sample's own generator."""
    rows = [
        _original_cosine_mask(
            ids[i : i + 1], mask_id, _generator(k, ratio), ratio, None if maskable is None else maskable[i : i + 1]
        )
        for i, k in enumerate(_sample_index["index"].tolist())
    ]
    return maskgit.MaskedTokens(torch.cat([r.inputs for r in rows]), torch.cat([r.mask for r in rows]))


def per_sample_tube_mask(batch, grid, ratio, device=None, generator=None):
    """:func:`lfq_kit.models._tube_masking.tube_mask`, each row drawn from its sample's own generator."""
    rows = [_original_tube_mask(1, grid, ratio, device, _generator(k, ratio)) for k in _sample_index["index"].tolist()]
    return tube_masking.TubeMask(*(torch.cat(parts) for parts in zip(*rows)))


def patch_masks() -> None:
    """Make the masked LM's and VideoMAE's masks functions of the samples (see the module docstring)."""
    import lfq_kit.models.masked_lm as masked_lm
    import lfq_kit.models.videomae as videomae

    masked_lm.cosine_mask = per_sample_cosine_mask
    videomae.tube_mask = per_sample_tube_mask
