"""Write the tokens of a whole dataset to disk during ``lfq-kit predict`` (input of the masked LM).

Layout of ``output_dir`` (one set per rank, so multi-GPU prediction needs no gathering)::

    <split>/tokens-rank0-00000.safetensors   indices (N, T', H', W') int32, labels (N,), clip_starts (N,) int64
    <split>/index-rank0.json                 {"codebook_size", "grid", "tokenizer_hash", "shards": [...]}

``<split>`` names each prediction loader: the datamodule's ``predict_splits`` (``train``, ``val`` for the
video data modules); with a single loader and no names the files go into ``output_dir`` itself.
``tokenizer_hash`` is :func:`lfq_kit.models.tokenizer_hash` of the predicting tokenizer, which
:class:`lfq_kit.data.TokenDataModule` and the masked LM check against their tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from safetensors.torch import save_file

from ..io import write_atomic
from ..models.frozen_tokenizer import tokenizer_hash

__all__ = ["TokenWriter"]


class _SplitShards:
    """Pending clips and written shards of one prediction loader, in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pending: list[dict[str, Any]] = []
        self.shards: list[dict[str, Any]] = []
        self.grid: list[int] | None = None

    def flush(self, rank: int) -> None:
        if not self.pending:
            return
        tensors = {key: torch.cat([p[key] for p in self.pending]) for key in ("indices", "labels", "clip_starts")}
        name = f"tokens-rank{rank}-{len(self.shards):05d}.safetensors"
        write_atomic(self.folder / name, lambda tmp: save_file(tensors, str(tmp)))
        video_ids = [v for p in self.pending for v in p["video_ids"]]
        self.shards.append({"file": name, "num_clips": len(video_ids), "video_ids": video_ids})
        self.pending = []

    def write_index(self, rank: int, codebook_size: int, tokenizer: str | None) -> None:
        index = {
            "codebook_size": codebook_size,
            "grid": self.grid,
            "tokenizer_hash": tokenizer,
            "num_clips": sum(s["num_clips"] for s in self.shards),
            "shards": self.shards,
        }
        text = json.dumps(index, indent=1)
        write_atomic(self.folder / f"index-rank{rank}.json", lambda tmp: tmp.write_text(text))


class TokenWriter(BasePredictionWriter):
    """Collects ``predict_step`` outputs (``{"indices", "label", "video_id", "clip_start"}``) of a ``VideoTokenizer``
    or of :class:`lfq_kit.models.TokenizeClips` (a tokenizer checkpoint path) into safetensors shards of
    ``shard_size`` clips plus a JSON index naming each clip's video and label.

    Indices are stored as int32 (vocabularies up to 2^31). Files are written atomically (temporary file,
    then rename), so an interrupted run never leaves a truncated shard under its final name.

    Args:
        output_dir: folder for the shards and the index (created if missing).
        shard_size: clips per shard.
    """

    def __init__(self, output_dir: str, shard_size: int = 4096) -> None:
        super().__init__(write_interval="batch")
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.output_dir = Path(output_dir)
        self.shard_size = shard_size
        self._reset()

    def _reset(self) -> None:
        self._splits: dict[int, _SplitShards] = {}

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def _split(self, trainer: L.Trainer, dataloader_idx: int) -> _SplitShards:
        if dataloader_idx not in self._splits:
            names = getattr(trainer.datamodule, "predict_splits", None) if trainer.datamodule is not None else None
            loaders = trainer.predict_dataloaders
            num_loaders = len(loaders) if isinstance(loaders, (list, tuple)) else 1
            if names is not None and len(names) == num_loaders:
                folder = self.output_dir / names[dataloader_idx]
            else:
                folder = self.output_dir if num_loaders == 1 else self.output_dir / f"loader{dataloader_idx}"
            folder.mkdir(parents=True, exist_ok=True)
            self._splits[dataloader_idx] = _SplitShards(folder)
        return self._splits[dataloader_idx]

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        indices = prediction["indices"].detach().cpu()
        n = indices.shape[0]
        split = self._split(trainer, dataloader_idx)
        split.grid = list(indices.shape[1:])
        split.pending.append(
            {
                "indices": indices.to(torch.int32),
                "labels": torch.as_tensor(prediction.get("label", torch.full((n,), -1))).cpu().long().reshape(n),
                "clip_starts": torch.as_tensor(prediction.get("clip_start", torch.zeros(n))).cpu().long().reshape(n),
                "video_ids": [str(v) for v in prediction.get("video_id", [""] * n)],
            }
        )
        if sum(p["indices"].shape[0] for p in split.pending) >= self.shard_size:
            split.flush(trainer.global_rank)

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        frozen = getattr(pl_module, "frozen_tokenizer", None)  # lfq_kit.models.TokenizeClips
        if frozen is not None:
            digest, codebook_size = frozen.hash, frozen.codebook_size
        else:  # a VideoTokenizer itself
            digest = tokenizer_hash(pl_module) if hasattr(pl_module, "inference_generator") else None
            codebook_size = int(pl_module.quantizer.codebook_size)
        for split in self._splits.values():
            split.flush(trainer.global_rank)
            split.write_index(trainer.global_rank, codebook_size, digest)
