"""Layer-wise learning-rate decay for fine-tuning a pretrained ViT (BEiT, arXiv 2106.08254; MAE ``util/lr_decay.py``;
timm ``param_groups_layer_decay``; VideoMAE fine-tuning, MCG-NJU/VideoMAE ``run_class_finetuning.py``).

Layer ids: 0 for the patch and position embeddings, ``i + 1`` for block ``i``, ``depth + 1`` for everything after
the blocks (final norm, head). A parameter of layer ``id`` gets the scale ``decay ** (depth + 1 − id)``: with depth
12 and decay 0.75 the embeddings train at 0.0238 of the head's rate, block 0 at 0.0317, block 11 at 0.75.

Each group keeps its scale as ``"lr_scale"``, which :func:`lfq_kit.models._training.build_optimizer` multiplies into
the group's ``lr`` when the optimizer is built, so ``LambdaLR`` (which scales every group's *initial* lr) applies it
at every scheduler step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

__all__ = ["layer_decay_groups", "layer_scale"]


def layer_scale(layer_id: int, depth: int, decay: float) -> float:
    """``decay ** (depth + 1 − layer_id)``."""
    return decay ** (depth + 1 - layer_id)


def layer_decay_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    layer_id: Callable[[str], int],
    depth: int,
    decay: float,
    no_weight_decay: Callable[[str, nn.Parameter], bool],
) -> list[dict]:
    """Optimizer parameter groups, one per (layer, weight decay or not), for parameters that require gradients.

    Each group has ``params``, ``lr_scale``, ``layer_id`` and, where ``no_weight_decay``, ``weight_decay = 0`` (the
    others take the optimizer's); groups are ordered by (layer id, decayed first).

    Raises:
        ValueError: ``decay`` outside ``(0, 1]`` or a layer id outside ``[0, depth + 1]``.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"layer_decay must be in (0, 1], got {decay}")
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        lid = layer_id(name)
        if not 0 <= lid <= depth + 1:
            raise ValueError(f"parameter {name!r} has layer id {lid}, outside [0, {depth + 1}]")
        skip = no_weight_decay(name, param)
        key = (lid, skip)
        if key not in groups:
            groups[key] = {"params": [], "lr_scale": layer_scale(lid, depth, decay), "layer_id": lid}
            if skip:
                groups[key]["weight_decay"] = 0.0
        groups[key]["params"].append(param)
    return [groups[k] for k in sorted(groups)]
