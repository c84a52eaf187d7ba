"""The training wiring the four LightningModules share: optimizer and parameter groups, warm-up + cosine schedule,
effective batch and ``torch.compile``. Each module's ``configure_optimizers`` and ``configure_model`` are a few
calls into this file, so a change to how lfq-kit trains is one edit.

Weight decay (one rule for every model, timm's convention): no decay on biases (any shape), on parameters of norm
layers (any shape) and of ``nn.Embedding`` tables, on any other 0- or 1-D parameter, and on the names a module
lists in its ``no_weight_decay()`` method (position tables, mask tokens, token tables), as timm models do; the
names ``pos_embed``, ``mask_token`` and ``tables`` are recognised without one (MCG-NJU VideoMAE
``optim_factory.py`` skip list). Everything else (linear and convolution weights) decays.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from functools import partial
from typing import Any

import lightning as L
import torch
from timm.optim import param_groups_weight_decay
from torch import nn
from torch.optim.lr_scheduler import LambdaLR
from torch.optim.swa_utils import AveragedModel

__all__ = [
    "WarmupCosine",
    "build_optimizer",
    "compile_modules",
    "decay_steps",
    "effective_batch",
    "no_weight_decay",
    "no_weight_decay_names",
    "recipe_adamw",
    "regroup_optimizer_state",
    "scaled_lr",
    "step_scheduler",
    "update_ema",
    "warmup_cosine",
    "weight_decay_groups",
]

OptimizerFactory = Callable[[Iterable[Any]], torch.optim.Optimizer]

_NORM_MODULE = re.compile(r"(^|_)norm\d*$")  # norm, norm1, norm2, fc_norm, probe_norm, decoder.norm
_NO_DECAY_KEYS = ("pos_embed", "mask_token", "tables")
_NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)


# -- weight decay -----------------------------------------------------------------------------------------------


def no_weight_decay(name: str, param: nn.Parameter) -> bool:
    """The name-only part of the rule: True for every bias (a ``*.bias`` name, any shape), every parameter of a
    module named ``norm``, ``norm<i>`` or ``*_norm`` (any shape), any other 0- or 1-D parameter, and names containing
    ``pos_embed``, ``mask_token`` or ``tables``."""
    module, _, leaf = name.rpartition(".")
    if param.ndim < 2 or leaf == "bias" or _NORM_MODULE.search(module.rpartition(".")[2]):
        return True
    return any(key in name for key in _NO_DECAY_KEYS)


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Full names of ``model``'s parameters that take no weight decay (the module docstring's rule): the
    name rule, parameters of norm layers and embeddings, and every ``no_weight_decay()`` set of ``model`` and its
    submodules (names relative to the declaring module; shell patterns allowed, as timm's)."""
    declared: set[str] = set()
    for prefix, module in model.named_modules():
        own = module.no_weight_decay() if callable(getattr(module, "no_weight_decay", None)) else ()
        declared |= {f"{prefix}.{n}" if prefix else n for n in own}
        if isinstance(module, (*_NORM_TYPES, nn.Embedding)):
            declared |= {f"{prefix}.{n}" if prefix else n for n, _ in module.named_parameters(recurse=False)}
    names = set()
    for name, param in model.named_parameters():
        if no_weight_decay(name, param) or any(fnmatchcase(name, pattern) for pattern in declared):
            names.add(name)
    return names


def weight_decay_groups(model: nn.Module) -> list[dict[str, Any]]:
    """``[decayed, not decayed]`` groups of ``model``'s trainable parameters (timm's ``param_groups_weight_decay``
    with :func:`no_weight_decay_names`). The decayed group takes the optimizer's own ``weight_decay``; the other
    sets it to 0. Empty groups are kept, so the layout (and a checkpoint's optimizer state) never depends on it."""
    no_decay_names = no_weight_decay_names(model)
    groups = param_groups_weight_decay(model, 1.0, no_weight_decay_list=no_decay_names)
    no_decay = next((g["params"] for g in groups if g["weight_decay"] == 0.0), [])
    decay = next((g["params"] for g in groups if g["weight_decay"] != 0.0), [])
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(
    factory: OptimizerFactory, model: nn.Module, groups: list[dict[str, Any]] | None = None
) -> torch.optim.Optimizer:
    """``factory`` applied to ``groups`` (:func:`weight_decay_groups` or layer-wise ones); ``groups`` None: one group
    of all of ``model``'s parameters when the optimizer has no weight decay (the tokenizer's Adam), else
    :func:`weight_decay_groups`. A group's ``lr_scale`` (layer-wise decay) multiplies the optimizer's learning rate
    into that group's ``lr`` before any scheduler reads it."""
    if groups is None:
        optimizer = factory(list(model.parameters()))
        if not optimizer.defaults.get("weight_decay"):
            return optimizer  # nothing to exempt: one group, as an optimizer without decay always had
        groups = weight_decay_groups(model)
    optimizer = factory(groups)
    for group in optimizer.param_groups:
        if "lr_scale" in group:
            group["lr"] = group["lr"] * group["lr_scale"]
    return optimizer


def scaled_lr(base_lr: float, effective_batch: int) -> float:
    """VideoMAE's linear scaling rule: ``base_lr · effective_batch / 256``."""
    return base_lr * effective_batch / 256


def recipe_adamw(module: L.LightningModule) -> OptimizerFactory:
    """AdamW from ``module.hparams``: ``lr``, or ``base_lr`` scaled by the :func:`effective_batch` (:func:`scaled_lr`),
    ``betas`` and ``weight_decay`` (the VideoMAE recipes' settings, read when the optimizer is built)."""
    hp = module.hparams
    lr = hp.lr if hp.lr is not None else scaled_lr(hp.base_lr, effective_batch(module._trainer))
    return partial(torch.optim.AdamW, lr=lr, betas=tuple(hp.betas), weight_decay=hp.weight_decay)


def regroup_optimizer_state(state: dict[str, Any], old: list[list[str]], new: list[list[str]]) -> dict[str, Any]:
    """An optimizer ``state_dict`` saved with the parameter groups ``old`` (parameter names per group), laid out for
    the groups ``new`` (the same names, regrouped): each parameter keeps its own state (Adam's moments), group ``i``
    keeps the saved settings of group ``i``. Lets a checkpoint from before a grouping change resume.

    Raises:
        ValueError: ``old`` does not match the saved group sizes, or ``new`` names other parameters.
    """
    saved = state["param_groups"]
    if [len(g["params"]) for g in saved] != [len(g) for g in old] or sorted(sum(old, [])) != sorted(sum(new, [])):
        raise ValueError(
            f"cannot regroup optimizer state: saved group sizes {[len(g['params']) for g in saved]}, "
            f"old layout {[len(g) for g in old]}, new layout {[len(g) for g in new]}"
        )
    by_name = {}
    for group, names in zip(saved, old):
        by_name.update({name: index for name, index in zip(names, group["params"])})
    groups, per_param, index = [], {}, 0
    for group, names in zip(saved, new):
        groups.append({**group, "params": list(range(index, index + len(names)))})
        for name in names:
            if by_name[name] in state["state"]:
                per_param[index] = state["state"][by_name[name]]
            index += 1
    return {**state, "state": per_param, "param_groups": groups}


# -- schedule -----------------------------------------------------------------------------------------------------


class WarmupCosine:
    """Multiplier for ``LambdaLR``: linear warm-up from 0 over ``warmup_steps``, then cosine decay to
    ``min_ratio`` over ``decay_steps`` (constant 1 after warm-up when ``decay_steps`` is None or 0).

    A callable object, not a lambda, so ``LambdaLR.state_dict()`` keeps it and resumes exactly.
    """

    def __init__(self, warmup_steps: int = 0, decay_steps: int | None = None, min_ratio: float = 0.0) -> None:
        self.warmup_steps = warmup_steps
        self.decay_steps = decay_steps
        self.min_ratio = min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        if not self.decay_steps:
            return 1.0
        progress = min((step - self.warmup_steps) / max(self.decay_steps - self.warmup_steps, 1), 1.0)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def decay_steps(configured: int | None, trainer: L.Trainer | None, steps_per_batch: int = 1) -> int | None:
    """End of the cosine decay: ``configured``, else ``trainer.max_steps // steps_per_batch`` when the trainer
    has a positive ``max_steps`` (the tokenizer counts generator steps: 2 optimizer steps per batch), else None."""
    if configured is not None:
        return configured
    max_steps = trainer.max_steps if trainer is not None else -1
    return max_steps // steps_per_batch if max_steps and max_steps > 0 else None


def warmup_cosine(optimizer: torch.optim.Optimizer, module: L.LightningModule, steps_per_batch: int = 1) -> LambdaLR:
    """``LambdaLR`` with :class:`WarmupCosine` from ``module.hparams`` ``warmup_steps``, ``decay_steps`` (see
    :func:`decay_steps`) and ``min_lr_ratio``."""
    hp = module.hparams
    end = decay_steps(hp.decay_steps, module._trainer, steps_per_batch)
    return LambdaLR(optimizer, WarmupCosine(hp.warmup_steps, end, hp.min_lr_ratio))


def step_scheduler(optimizer: torch.optim.Optimizer, module: L.LightningModule) -> dict[str, Any]:
    """``configure_optimizers``' return for automatic optimization: ``optimizer`` and its :func:`warmup_cosine`,
    stepped every optimizer step."""
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": warmup_cosine(optimizer, module), "interval": "step"}}


# -- batch and compile --------------------------------------------------------------------------------------------


def effective_batch(trainer: L.Trainer | None) -> int:
    """Clips per optimizer step: batch size × gradient accumulation × devices (the data module's ``batch_size``;
    1 per device without a trainer or a data module that says it)."""
    data = trainer.datamodule if trainer is not None else None
    batch = int(getattr(data, "batch_size", 1) or 1)
    if trainer is None:
        return batch
    return batch * int(trainer.accumulate_grad_batches) * int(trainer.world_size)


@torch.no_grad()
def update_ema(ema: AveragedModel, model: nn.Module) -> None:
    """One EMA step of ``model``'s parameters into ``ema``; buffers (a VQ codebook under EMA updates, a quantizer's
    step) are copied: they follow the live model."""
    ema.update_parameters(model)
    for ema_buffer, buffer in zip(ema.module.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)


def compile_modules(module: L.LightningModule, parts: Iterable[nn.Module]) -> None:
    """Call from ``configure_model``: ``torch.compile`` each of ``parts`` in place (parameter names and checkpoints
    unchanged) once, when ``module.hparams.compile`` (absent from older checkpoints: off)."""
    if module.hparams.get("compile", False) and not getattr(module, "_compiled", False):
        for part in parts:
            part.compile()
        module._compiled = True
