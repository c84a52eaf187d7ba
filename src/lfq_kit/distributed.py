"""The one test of "are several ranks running?" and the mean over ranks, shared by the quantizers, losses,
models and data modules (each decides from it whether a collective is needed; none is called on one process)."""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor

__all__ = ["all_reduce_mean", "is_distributed"]


def is_distributed() -> bool:
    """True when a default process group of more than one rank is initialized: global statistics need a
    collective, which every rank must then call."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_mean(x: Tensor) -> Tensor:
    """``x`` averaged over the ranks, in place (not differentiable; ``x`` unchanged on one process). For means
    of equal-sized per-rank batches (as DDP has) this is the global-batch mean."""
    if is_distributed():
        dist.all_reduce(x)
        x /= dist.get_world_size()
    return x
