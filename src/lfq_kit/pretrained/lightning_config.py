"""Building a LightningModule from a config node so that its checkpoint rebuilds it, as LightningCLI does.

A checkpoint written by ``lfq-kit fit`` stores the model's config (class path and init args) and the name of
Lightning's instantiator in its hyper-parameters, so ``Model.load_from_checkpoint(path)`` needs nothing else. A
converter builds its model the same way here, so its output loads like a trained one (the frozen tokenizer,
``lfq-kit compress``, ``load_from_checkpoint``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import yaml

__all__ = ["instantiate_with_config", "read_model_section", "resolve_model_config"]

_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"


def read_model_section(path: str | os.PathLike) -> dict[str, Any]:
    """The ``model`` node (``class_path``, ``init_args``) of a YAML config.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not YAML, or no ``model`` node with a ``class_path`` (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config {str(path)!r} not found")
    try:
        node = (yaml.safe_load(path.read_text()) or {}).get("model")
    except (yaml.YAMLError, AttributeError) as err:
        raise ValueError(f"config {str(path)!r} is not a YAML mapping: {err}") from err
    if not isinstance(node, dict) or "class_path" not in node:
        raise ValueError(f"config {str(path)!r} has no `model:` node with a class_path")
    return node


def resolve_model_config(node: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """``node`` with every class path made absolute and every default filled in (what ``--print_config`` shows).

    Raises:
        ValueError: a class path or option jsonargparse cannot resolve (the message names ``source``).
    """
    from jsonargparse import ArgumentParser

    from ..registry import import_components

    import_components()
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(L.LightningModule, "model")
    try:
        parsed = parser.parse_object({"model": node})
    except Exception as err:  # jsonargparse raises several types; the message says what failed
        raise ValueError(f"{source}: the model config does not parse: {err}") from err
    return parsed.as_dict()["model"]


def instantiate_with_config(resolved: dict[str, Any], expected: type[L.LightningModule]) -> L.LightningModule:
    """Build the model of a resolved config node with that config as its hyper-parameters (LightningCLI's way),
    so that ``expected.load_from_checkpoint`` of its checkpoint rebuilds it.

    Raises:
        ValueError: the node's class is not ``expected`` or a subclass.
    """
    from lightning.pytorch.cli import instantiate_module
    from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters_context

    hparams = {"_class_path": resolved["class_path"], **resolved.get("init_args", {})}
    with _given_hyperparameters_context(hparams=hparams, instantiator=_INSTANTIATOR):
        model = instantiate_module(expected, hparams)
    if not isinstance(model, expected):
        raise ValueError(f"the config builds a {type(model).__name__}, not a {expected.__name__}")
    return model
