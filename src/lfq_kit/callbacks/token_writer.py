"""Write the tokens of a whole dataset to disk during ``lfq-kit predict`` (input of the masked LM).

Layout of ``output_dir`` (one set per rank, so multi-GPU prediction needs no gathering)::

    tokens-rank0-00000.safetensors   indices (N, T', H', W') int32, labels (N,) int64, clip_starts (N,) int64
    index-rank0.json                 {"codebook_size", "grid", "shards": [{"file", "video_ids", ...}]}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from safetensors.torch import save_file

__all__ = ["TokenWriter"]


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class TokenWriter(BasePredictionWriter):
    """Collects ``predict_step`` outputs (``{"indices", "label", "video_id", "clip_start"}``) into
    safetensors shards of ``shard_size`` clips plus a JSON index naming each clip's video and label.

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
        self._pending: list[dict[str, Any]] = []
        self._shards: list[dict[str, Any]] = []
        self._grid: list[int] | None = None

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset()
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0):
        indices = prediction["indices"].detach().cpu()
        n = indices.shape[0]
        self._grid = list(indices.shape[1:])
        self._pending.append(
            {
                "indices": indices.to(torch.int32),
                "labels": torch.as_tensor(prediction.get("label", torch.full((n,), -1))).cpu().long().reshape(n),
                "clip_starts": torch.as_tensor(prediction.get("clip_start", torch.zeros(n))).cpu().long().reshape(n),
                "video_ids": [str(v) for v in prediction.get("video_id", [""] * n)],
            }
        )
        if sum(p["indices"].shape[0] for p in self._pending) >= self.shard_size:
            self._flush(trainer.global_rank)

    def _flush(self, rank: int) -> None:
        if not self._pending:
            return
        tensors = {key: torch.cat([p[key] for p in self._pending]) for key in ("indices", "labels", "clip_starts")}
        name = f"tokens-rank{rank}-{len(self._shards):05d}.safetensors"
        tmp = self.output_dir / (name + ".tmp")
        save_file(tensors, str(tmp))
        os.replace(tmp, self.output_dir / name)
        video_ids = [v for p in self._pending for v in p["video_ids"]]
        self._shards.append({"file": name, "num_clips": len(video_ids), "video_ids": video_ids})
        self._pending = []

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flush(trainer.global_rank)
        index = {
            "codebook_size": int(pl_module.quantizer.codebook_size),
            "grid": self._grid,
            "num_clips": sum(s["num_clips"] for s in self._shards),
            "shards": self._shards,
        }
        _atomic_write_text(self.output_dir / f"index-rank{trainer.global_rank}.json", json.dumps(index, indent=1))
