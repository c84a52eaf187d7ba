"""The data half of exact resume: a Lightning fit on the real SampleClipsDataModule, stopped at a step (mid-epoch
or on an epoch boundary) and resumed with ``ckpt_path``, trains on exactly the batches the uninterrupted run
trained on after that step (same clips, same crops and flips, same order)."""

from __future__ import annotations

import hashlib

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lfq_kit.data import SampleClipsDataModule


class BatchRecorder(L.LightningModule):
    """One parameter fitted to the batch mean; records what each training step saw."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[tuple[int, tuple[int, ...], str]] = []

    def training_step(self, batch, batch_idx):
        digest = hashlib.sha1(batch["video"].numpy().tobytes()).hexdigest()
        self.seen.append((self.current_epoch, tuple(batch["index"].tolist()), digest))
        return (self.w - batch["video"].mean()) ** 2

    def validation_step(self, batch, batch_idx):
        self.log("val/mean", batch["video"].mean(), batch_size=len(batch["video"]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit(tmp_path, workers: int, ckpt_path=None, checkpoints=None) -> list:
    L.seed_everything(21, verbose=False)  # the data's base seed comes from here (PL_GLOBAL_SEED)
    data = SampleClipsDataModule(
        frames_per_clip=5,
        resolution=32,
        batch_size=2,
        clips_per_epoch=6,
        clips_per_video=1,
        cache_frames=True,
        train_crop_size=24,
        manifest_dir=str(tmp_path / "manifest"),
        num_workers=workers,
        persistent_workers=True,
    )
    callbacks = [  # after every step (in on_train_batch_end), and after each epoch's validation
        ModelCheckpoint(dirpath=checkpoints, filename="{step}", every_n_train_steps=1, save_top_k=-1),
        ModelCheckpoint(dirpath=checkpoints, filename="end-{epoch}", every_n_epochs=1, save_top_k=-1),
    ]
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=2,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks if checkpoints else None,
        enable_checkpointing=checkpoints is not None,
        default_root_dir=tmp_path,
    )
    model = BatchRecorder()
    trainer.fit(model, data, ckpt_path=ckpt_path)
    return model.seen


@pytest.mark.parametrize("workers", [0, 2])
def test_resumed_fit_sees_the_uninterrupted_batches(tmp_path, workers):
    full = _fit(tmp_path, workers, checkpoints=tmp_path / "ckpt")
    assert len(full) == 6 and [e for e, _, _ in full] == [0, 0, 0, 1, 1, 1]
    assert {i for _, idx, _ in full[:3] for i in idx} == set(range(6))  # each epoch is a permutation
    assert [idx for _, idx, _ in full[:3]] != [idx for _, idx, _ in full[3:]]  # reshuffled per epoch
    # mid-epoch 0, after epoch 0's last batch, after epoch 0's end, mid-epoch 1 (with workers: the last three)
    for name, done in [("step=2", 2), ("step=3", 3), ("end-epoch=0", 3), ("step=5", 5)][1 if workers else 0 :]:
        resumed = _fit(tmp_path / f"resume-{name}", workers, ckpt_path=tmp_path / "ckpt" / f"{name}.ckpt")
        assert resumed == full[done:], f"resumed from {name}.ckpt"
