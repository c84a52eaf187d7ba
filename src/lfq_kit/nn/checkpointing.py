"""Activation checkpointing of one sub-module call: keep only its inputs, recompute its inside in backward.

Trades compute for memory (about one extra forward of the wrapped parts per step) in the large presets. Uses
``torch.utils.checkpoint`` with ``use_reentrant=False``, which restores the random state for the recomputation
(dropout draws the same mask twice) and works when the inputs do not require gradients. Outputs and gradients
equal those of the plain call (up to float reassociation, usually bit-exact).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["maybe_checkpoint"]


def maybe_checkpoint(fn: Callable[..., Any], *args: Any, enabled: bool) -> Any:
    """``fn(*args)``, checkpointed when ``enabled`` and autograd records (never in ``no_grad`` or inference)."""
    if enabled and torch.is_grad_enabled():
        return checkpoint(fn, *args, use_reentrant=False)
    return fn(*args)
