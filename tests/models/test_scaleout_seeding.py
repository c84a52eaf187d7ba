"""Per-step seeding (issue 13): the random draws of a training step depend only on (seed, batch count, rank), so a
run stopped mid-epoch and resumed draws what an uninterrupted run draws, and ends with the same weights."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from tiny_tokenizer import RandomClipData, tiny_tokenizer
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from lfq_kit.backbones.transformer import TransformerTiny
from lfq_kit.models.masked_lm import MaskedLM
from lfq_kit.seeding import base_seed, step_seed


def test_step_seed_is_a_pure_function_of_base_step_and_rank(monkeypatch):
    seeds = {step_seed(b, s, r) for b in (0, 1) for s in range(50) for r in range(4)}
    assert len(seeds) == 400 and all(0 <= x < 2**63 for x in seeds)
    assert step_seed(7, 3, 1) == step_seed(7, 3, 1)
    monkeypatch.setenv("PL_GLOBAL_SEED", "42")
    assert base_seed() == 42
    monkeypatch.setenv("PL_GLOBAL_SEED", "forty-two")
    with pytest.raises(ValueError, match="PL_GLOBAL_SEED must be an integer"):
        base_seed()
    monkeypatch.delenv("PL_GLOBAL_SEED")
    assert base_seed() == 0


class _Tokens(Dataset):
    def __init__(self, n: int = 12) -> None:
        g = torch.Generator().manual_seed(0)
        self.ids = torch.randint(0, 2**18, (n, 2, 2, 4), generator=g)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"indices": self.ids[i], "label": torch.tensor(i % 3)}


class _StatefulTokens(L.LightningDataModule):
    def train_dataloader(self):  # Lightning saves and restores its position inside the epoch
        return StatefulDataLoader(_Tokens(), batch_size=2)


def _mlm() -> MaskedLM:
    torch.manual_seed(0)
    backbone = TransformerTiny(dropout=0.2, attn_dropout=0.2)  # dropout, masks and class dropout all draw
    return MaskedLM(
        backbone, grid=(2, 2, 4), codebook_size=2**18, num_classes=3, warmup_steps=0, decay_steps=10
    )  # fixed: with None the schedule would follow each run's max_steps


def _trainer(root, max_steps, callbacks=()):
    return L.Trainer(
        default_root_dir=root,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_steps=max_steps,
        limit_val_batches=0,
        deterministic=True,
        enable_checkpointing=bool(callbacks),
        callbacks=list(callbacks),
    )


def test_masked_lm_resumed_mid_epoch_ends_with_the_same_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "5")
    full = _mlm()
    _trainer(tmp_path / "full", 5).fit(full, _StatefulTokens())

    part = _mlm()
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=2, save_top_k=-1)
    _trainer(tmp_path / "part", 2, [ckpt]).fit(part, _StatefulTokens())
    torch.rand(1000)  # a new process's generator is anywhere: what a resumed run draws must not depend on it
    resumed = _mlm()
    _trainer(tmp_path / "resumed", 5).fit(
        resumed, _StatefulTokens(), ckpt_path=tmp_path / "ckpt" / "epoch=0-step=2.ckpt"
    )
    for (name, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    # and the seeding matters: another base seed trains other weights
    monkeypatch.setenv("PL_GLOBAL_SEED", "6")
    other = _mlm()
    _trainer(tmp_path / "other", 5).fit(other, _StatefulTokens())
    assert not torch.equal(other.position_embedding, full.position_embedding)


def test_the_tokenizer_seeds_every_micro_batch_from_the_batch_count_and_rank(tmp_path, monkeypatch):
    monkeypatch.setenv("PL_GLOBAL_SEED", "3")
    model = tiny_tokenizer(discriminator=False, accumulate_grad_batches=2, ema_decay=None)
    seen = []
    step = model.training_step

    def spy(batch, batch_idx):
        seen.append(torch.initial_seed())
        return step(batch, batch_idx)

    monkeypatch.setattr(model, "training_step", spy)
    t = _trainer(tmp_path, 3)
    t.fit(model, RandomClipData(n=12, batch_size=2))
    assert seen == [step_seed(3, i, 0) for i in range(6)]  # 3 optimizer steps × 2 micro-batches
