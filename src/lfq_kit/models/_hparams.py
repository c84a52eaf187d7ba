"""Saving a LightningModule's init arguments so that ``load_from_checkpoint`` rebuilds it."""

from __future__ import annotations

import inspect
import warnings

import lightning as L
from torch import nn

__all__ = ["save_init_config"]


def save_init_config(module: L.LightningModule) -> None:
    """Call from ``__init__``: save the caller's init arguments as hyper-parameters.

    Under LightningCLI they are the config (class paths and init args), so ``load_from_checkpoint`` rebuilds the
    whole model from it. Objects given from Python (modules, classes, factories) are dropped: their weights are in
    the state dict, and plain values keep checkpoints loadable with ``torch.load(weights_only=True)``; such a model
    is reloaded with ``load_from_checkpoint(path, backbone=...)`` passing the same objects again.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`.*")
        module.save_hyperparameters(frame=inspect.currentframe().f_back)
    for key in [k for k, v in module.hparams.items() if isinstance(v, nn.Module) or callable(v)]:
        del module.hparams[key]
