"""Token shards written by ``lfq-kit predict`` (:class:`lfq_kit.callbacks.TokenWriter`) as a DataModule.

Layout of ``root`` (one index per writing rank)::

    <split>/index-rank<r>.json          {"codebook_size", "grid", "tokenizer_hash", "num_clips", "shards": [...]}
    <split>/tokens-rank<r>-<n>.safetensors   indices (N, T', H', W') int32, labels (N,), clip_starts (N,) int64

Every index of a split must agree on vocabulary, grid and tokenizer hash, and every shard must hold what its index
says (clip count, grid, ids in ``[0, codebook_size)``); the expected values given to the DataModule are checked
against the index. Each error names the file and both values. Shards are small (int32 ids), so a split is loaded
into memory once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
from safetensors.torch import load_file
from torch import Tensor
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from ..seeding import SampleKey, split_key
from .loaders import build_loader

__all__ = ["TokenDataModule", "TokenDataset", "read_token_split"]


def _mismatch(what: str, where: str, got: Any, expected: Any, source: str) -> ValueError:
    return ValueError(f"{where}: {what} {got!r} differs from {expected!r} ({source})")


def read_token_split(folder: str | Path) -> tuple[dict[str, Any], dict[str, Tensor], list[str]]:
    """Load and check every shard of one split folder.

    Returns:
        ``(header, tensors, video_ids)``: ``header`` has ``codebook_size``, ``grid`` (list of 3 ints) and
        ``tokenizer_hash`` (or None for shards written before hashes); ``tensors`` has ``indices`` ``(N, T', H', W')``
        int64, ``labels`` ``(N,)`` and ``clip_starts`` ``(N,)`` int64.

    Raises:
        FileNotFoundError: no index in ``folder`` (the message says which command writes them) or a missing shard.
        ValueError: indexes that disagree, or a shard that differs from its index (file and values named).
    """
    folder = Path(folder)
    indexes = sorted(folder.glob("index-rank*.json"))
    if not indexes:
        raise FileNotFoundError(
            f"no token index (index-rank*.json) in {str(folder)!r}; write token shards with `lfq-kit predict`: "
            "`lfq-kit predict --config configs/quickstart_tokens.yaml` for the quickstart's (after `lfq-kit fit "
            "--config configs/quickstart.yaml`), or a config with a TokenWriter callback for other data"
        )
    header: dict[str, Any] | None = None
    parts: dict[str, list[Tensor]] = {"indices": [], "labels": [], "clip_starts": []}
    video_ids: list[str] = []
    for index_file in indexes:
        index = json.loads(index_file.read_text())
        this = {
            "codebook_size": index["codebook_size"],
            "grid": list(index["grid"]),
            "tokenizer_hash": index.get("tokenizer_hash"),
        }
        if header is None:
            header = this
        for key in header:
            if this[key] != header[key]:
                raise _mismatch(key, str(index_file), this[key], header[key], f"in {indexes[0].name}")
        for shard in index["shards"]:
            path = folder / shard["file"]
            if not path.is_file():
                raise FileNotFoundError(f"token shard {str(path)!r} listed in {index_file.name} is missing")
            tensors = load_file(str(path))
            ids = tensors["indices"]
            if list(ids.shape[1:]) != header["grid"]:
                raise _mismatch("grid", str(path), list(ids.shape[1:]), header["grid"], "its index")
            if ids.shape[0] != shard["num_clips"] or len(shard["video_ids"]) != shard["num_clips"]:
                raise _mismatch("clip count", str(path), ids.shape[0], shard["num_clips"], "its index")
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= header["codebook_size"]):
                raise ValueError(
                    f"{path}: token ids span [{int(ids.min())}, {int(ids.max())}], "
                    f"outside [0, {header['codebook_size']})"
                )
            for key in parts:
                parts[key].append(tensors[key].long())
            video_ids += shard["video_ids"]
    assert header is not None
    tensors = {key: torch.cat(value) if value else torch.zeros(0, dtype=torch.long) for key, value in parts.items()}
    if not video_ids:
        raise ValueError(f"the token shards in {str(folder)!r} hold no clip")
    return header, tensors, video_ids


class TokenDataset(Dataset):
    """Clips of token ids: item ``i`` is ``{"indices": (T', H', W') int64, "label", "clip_start", "video_id"}``."""

    def __init__(self, tensors: dict[str, Tensor], video_ids: list[str]) -> None:
        self.tensors = tensors
        self.video_ids = video_ids

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, key: int | SampleKey) -> dict[str, Any]:
        """Item of an ``int`` index or a :class:`~lfq_kit.seeding.SampleKey` (no randomness: its seed is
        unused)."""
        i, _ = split_key(key)
        return {
            "indices": self.tensors["indices"][i],
            "label": self.tensors["labels"][i],
            "clip_start": self.tensors["clip_starts"][i],
            "video_id": self.video_ids[i],
        }


class TokenDataModule(L.LightningDataModule):
    """Training and validation batches of token ids from ``lfq-kit predict`` shards (input of the masked LM).

    Batches: ``indices`` ``(B, T', H', W')`` int64, ``label`` ``(B,)`` int64, ``clip_start`` ``(B,)``, ``video_id``
    (list of str).

    Args:
        root: the ``TokenWriter`` output folder.
        train_split: sub-folder of the training shards.
        val_split: sub-folder of the validation shards, or None for no validation.
        batch_size: clips per batch (per device).
        num_workers: DataLoader worker processes.
        codebook_size: expected vocabulary, checked against the index (None: take the index's).
        grid: expected token grid ``(T', H', W')``, checked (None: take the index's).
        tokenizer_hash: expected tokenizer hash (:func:`lfq_kit.models.tokenizer_hash`), checked (None: any).
        seed: base seed of the training order (None: ``seed_everything``'s seed, else 0; see
            :func:`~lfq_kit.seeding.base_seed`). Loaders are resumable mid-epoch and shard across ranks
            (validation without padding), see :mod:`lfq_kit.data.loaders`.

    Attributes (after :meth:`setup`): ``codebook_size``, ``grid``, ``tokenizer_hash``, ``num_classes`` (1 + the
    largest label), read from the shards; a model checks them against its own (``MaskedLM.setup``).

    Raises:
        FileNotFoundError, ValueError: see :func:`read_token_split`; an expected value that differs.
    """

    def __init__(
        self,
        root: str,
        train_split: str = "train",
        val_split: str | None = "val",
        batch_size: int = 32,
        num_workers: int = 0,
        codebook_size: int | None = None,
        grid: tuple[int, int, int] | None = None,
        tokenizer_hash: str | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.seed = seed
        self.root = Path(root)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.expected = {
            "codebook_size": codebook_size,
            "grid": None if grid is None else list(grid),
            "tokenizer_hash": tokenizer_hash,
        }
        self.train_set: TokenDataset | None = None
        self.val_set: TokenDataset | None = None
        self.codebook_size: int | None = None
        self.grid: tuple[int, int, int] | None = None
        self.tokenizer_hash: str | None = None
        self.num_classes = 0

    def _load(self, split: str) -> TokenDataset:
        header, tensors, video_ids = read_token_split(self.root / split)
        for key, expected in self.expected.items():
            if expected is not None and header[key] != expected:
                raise _mismatch(key, str(self.root / split), header[key], expected, f"TokenDataModule({key}=...)")
        if self.codebook_size is not None:  # the second split must match the first
            for key, value in (
                ("codebook_size", self.codebook_size),
                ("grid", list(self.grid)),
                ("tokenizer_hash", self.tokenizer_hash),
            ):
                if header[key] != value:
                    raise _mismatch(key, str(self.root / split), header[key], value, "the training split")
        self.codebook_size = int(header["codebook_size"])
        self.grid = tuple(header["grid"])
        self.tokenizer_hash = header["tokenizer_hash"]
        labels = tensors["labels"]
        self.num_classes = max(self.num_classes, int(labels.max()) + 1 if labels.numel() else 0)
        return TokenDataset(tensors, video_ids)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self._load(self.hparams.train_split)
        if self.val_set is None and self.hparams.val_split is not None:
            self.val_set = self._load(self.hparams.val_split)

    def _loader(self, dataset: TokenDataset | None, train: bool) -> StatefulDataLoader:
        if dataset is None:
            raise RuntimeError("TokenDataModule.setup() must run before its dataloaders are requested")
        return build_loader(
            dataset, self.batch_size, train, seed=self.seed, trainer=self.trainer, num_workers=self.num_workers
        )

    def train_dataloader(self) -> StatefulDataLoader:
        return self._loader(self.train_set, train=True)

    def val_dataloader(self) -> StatefulDataLoader:
        return self._loader(self.val_set, train=False)
