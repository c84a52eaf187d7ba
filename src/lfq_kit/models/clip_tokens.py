"""Tokens once: ``lfq-kit predict`` with a tokenizer *checkpoint path* writes the token shards a masked LM trains on.

The predict config names the tokenizer the way the masked LM does (``tokenizer: runs/quickstart/checkpoints/
last.ckpt``), so a chain from a fresh clone needs no ``--ckpt_path`` and no copy of the tokenizer's model section::

    lfq-kit predict --config configs/quickstart_tokens.yaml    # runs/quickstart_tokens/{train,val,holdout}/

:class:`lfq_kit.callbacks.TokenWriter` stores the frozen tokenizer's vocabulary and hash in each index, which
:class:`lfq_kit.data.TokenDataModule` and :class:`lfq_kit.models.MaskedLM` check against their tokenizer.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from .frozen_tokenizer import FrozenTokenizer

__all__ = ["TokenizeClips"]


class TokenizeClips(L.LightningModule):
    """Predict-only module: ``{"video": (B, 3, T, H, W) float in [−1, 1], "label", "frame_indices", ...}`` →
    ``{"indices": (B, T', H', W') int64, "label", "video_id", "clip_start"}`` (:meth:`VideoTokenizer.predict_step`).

    Args:
        tokenizer: path of a ``VideoTokenizer`` checkpoint, loaded frozen (:class:`FrozenTokenizer`).

    Raises:
        FileNotFoundError: no file at ``tokenizer`` (the message says which command makes it).
    """

    def __init__(self, tokenizer: str) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.frozen_tokenizer = FrozenTokenizer(tokenizer)

    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, Any]:
        model = self.frozen_tokenizer.model.to(batch["video"].device)
        return model.predict_step(batch, batch_idx, dataloader_idx)
