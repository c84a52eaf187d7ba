"""A tiny quantized autoencoder over random vectors, for CLI and plugin tests (not part of lfq-kit).

It exercises exactly what the CLI tests need: a quantizer injected from YAML by ``class_path``, an
``OptimizerCallable`` argument, and real training steps.
"""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.cli import OptimizerCallable
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lfq_kit.quantizers import Quantizer


class ToyAutoencoder(L.LightningModule):
    def __init__(self, quantizer: Quantizer, in_features: int = 16, optimizer: OptimizerCallable = torch.optim.Adam):
        super().__init__()
        self.save_hyperparameters()
        self.quantizer = quantizer
        self.encoder = nn.Linear(in_features, quantizer.dim)
        self.decoder = nn.Linear(quantizer.dim, in_features)
        self.optimizer = optimizer

    def training_step(self, batch, batch_idx):
        (x,) = batch
        self.quantizer.set_step(self.global_step)
        out = self.quantizer(self.encoder(x).unsqueeze(-1))  # (B, dim, 1)
        recon = self.decoder(out.quantized.squeeze(-1))
        loss = nn.functional.mse_loss(recon, x) + out.loss
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return self.optimizer(self.parameters())


class ToyData(L.LightningDataModule):
    def __init__(self, in_features: int = 16, num_samples: int = 64, batch_size: int = 8):
        super().__init__()
        self.data = TensorDataset(torch.randn(num_samples, in_features))
        self.batch_size = batch_size

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=self.batch_size, shuffle=True)
