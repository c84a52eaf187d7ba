"""Data modules of seeded random 18-bit token grids (``{"indices": (2, 2, 4) int64}`` per sample) for masked-LM
tests that need batches but no tokenizer: one for training only, one for validation only (a module with both
loaders would make ``fit`` validate too)."""

import lightning as L
import torch
from torch.utils.data import DataLoader


def random_token_loader(count: int, batch_size: int) -> DataLoader:
    """``count`` grids of ids in ``[0, 2^18)`` drawn with seed 0, in a fixed order, in batches of ``batch_size``."""
    ids = torch.randint(0, 2**18, (count, 2, 2, 4), generator=torch.Generator().manual_seed(0))
    return DataLoader([{"indices": i} for i in ids], batch_size=batch_size)


class RandomTokens(L.LightningDataModule):
    """Training batches of :func:`random_token_loader`."""

    def __init__(self, count: int = 4, batch_size: int = 4) -> None:
        super().__init__()
        self.count, self.batch_size = count, batch_size

    def train_dataloader(self) -> DataLoader:
        return random_token_loader(self.count, self.batch_size)


class RandomValTokens(RandomTokens):
    """Validation batches of :func:`random_token_loader` (and no training loader)."""

    train_dataloader = L.LightningDataModule.train_dataloader

    def val_dataloader(self) -> DataLoader:
        return random_token_loader(self.count, self.batch_size)
