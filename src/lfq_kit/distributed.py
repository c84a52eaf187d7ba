"""The one test of "are several ranks running?" and the mean over ranks, shared by the quantizers, losses,
models and data modules (each decides from it whether a collective is needed; none is called on one process)."""

from __future__ import annotations

import torch.distributed as dist
from torch import Tensor

__all__ = ["all_reduce_mean", "all_reduce_sum", "differentiable_all_reduce_sum", "is_distributed", "world_size"]


def is_distributed() -> bool:
    """True when a default process group of more than one rank is initialized: global statistics need a
    collective, which every rank must then call."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Ranks of the default process group (1 when none is initialized)."""
    return dist.get_world_size() if is_distributed() else 1


def all_reduce_sum(x: Tensor) -> Tensor:
    """``x`` summed over the ranks, in place (not differentiable; ``x`` unchanged on one process)."""
    if is_distributed():
        dist.all_reduce(x)
    return x


def differentiable_all_reduce_sum(x: Tensor) -> Tensor:
    """``x`` summed over the ranks, out of place and differentiable (functional collectives): the backward sums
    the ranks' gradients, so under DDP's gradient averaging a global-batch statistic gets its exact gradient."""
    if not is_distributed():
        return x
    from torch.distributed import _functional_collectives as funcol

    return funcol.all_reduce(x, "sum", dist.group.WORLD)


def all_reduce_mean(x: Tensor) -> Tensor:
    """``x`` averaged over the ranks, in place (not differentiable; ``x`` unchanged on one process). For means
    of equal-sized per-rank batches (as DDP has) this is the global-batch mean."""
    if is_distributed():
        all_reduce_sum(x)
        x /= dist.get_world_size()
    return x
