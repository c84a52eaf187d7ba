"""A validation pass (for the classifier also a test pass) and one training step of a case of
:mod:`cases`, on ``WORLD`` CPU processes (``strategy=ddp``, gloo) or one, writing what each rank saw.

    python tests/distributed/worker.py CASE WORLD OUT_DIR

Lightning's DDP launcher re-runs this script once per extra rank (with ``LOCAL_RANK`` set), so it is a plain
script, not a pytest process. Each rank writes ``OUT_DIR/rank<r>.pt``: the model's ``state_dict`` after the
step, the step's training loss and logged training figures (rank-local), the ``state_dict`` before it
(``initial``), the validation (and test) results as
``trainer.validate`` / ``trainer.test`` return them on that rank, and the warnings that rank recorded while
validating.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases  # noqa: E402


class Recorder(L.Callback):
    """Publishes each batch's dataset indices to the mask patches; keeps the training step's loss and figures."""

    def __init__(self) -> None:
        self.train: dict[str, float] = {}

    def _indices(self, batch: dict[str, Any]) -> None:
        cases._sample_index["index"] = batch["index"]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._indices(batch)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._indices(batch)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        self._indices(batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.train = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        self.train["step_loss"] = float(loss)


class Evaluation(L.LightningDataModule):
    """Validation and test loaders built when the trainer asks for them (after DDP set the ranks)."""

    def __init__(self, dataset) -> None:
        super().__init__()
        self.dataset = dataset

    def val_dataloader(self) -> DataLoader:
        return cases.evaluation_loader(self.dataset, self.trainer)

    def test_dataloader(self) -> DataLoader:
        return cases.evaluation_loader(self.dataset, self.trainer)


def main(case: str, world: int, out: Path) -> None:
    L.seed_everything(0, verbose=False)
    model = cases.build_model(case)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cases.patch_masks()  # after building: VideoMAE validates its ratio with a mask at construction
    tokenizer = case.startswith("tokenizer")
    # The tokenizer's generator backward leaves the discriminator's parameters without gradients (and the
    # discriminator's the generator's): DDP must look for unused parameters. The other models use every one.
    strategy = DDPStrategy(find_unused_parameters=tokenizer) if world > 1 else "auto"
    recorder = Recorder()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=world,
        strategy=strategy,
        max_steps=2 if tokenizer else 1,
        limit_train_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[recorder],
        deterministic=True,
    )
    train_set, val_set = cases.datasets(case)
    # One process takes the union of the two ranks' first batches (Lightning shards this loader round-robin).
    train = DataLoader(train_set, batch_size=cases.TRAIN_BATCH * 2 // world, shuffle=False)
    evaluation = Evaluation(val_set)
    # Evaluation first, on the initial weights (equal everywhere): its comparison does not depend on the step's.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        val = trainer.validate(model, datamodule=evaluation, verbose=False)[0]
    test = trainer.test(model, datamodule=evaluation, verbose=False)[0] if case == "classifier" else {}
    trainer.fit(model, train_dataloaders=train)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    result = {
        "initial": initial,
        "state": state,
        "train": recorder.train,
        "val": {k: float(v) for k, v in val.items()},
        "test": {k: float(v) for k, v in test.items()},
        "warnings": [str(w.message) for w in caught],
        "world": trainer.world_size,
    }
    torch.save(result, out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
