"""Loading a backbone's weights from a pretraining checkpoint (``pretrained: path`` of
:class:`lfq_kit.models.VideoClassifier`; ``--ckpt_path`` instead resumes a run).

Keys are taken from the checkpoint's ``state_dict`` under a prefix (``encoder.`` for a
:class:`~lfq_kit.models.VideoMAEPretraining` checkpoint, ``backbone.`` for a classifier's), and must match the
backbone's exactly: a missing key, an unexpected key or a shape mismatch is an error listing every one, unless the
key matches one of the user's ``skip_keys`` (shell patterns, e.g. ``pos_embed`` to re-learn position embeddings).

The file is read with ``torch.load(weights_only=True)``: PyTorch's restricted unpickler builds tensors, containers
and plain values only, so a checkpoint never runs code when it is loaded. lfq-kit's checkpoints need nothing more
(their hyper-parameters are plain values, :func:`lfq_kit.models._hparams.save_init_config`), nor do the files
``lfq-kit convert`` writes from public checkpoints.
"""

from __future__ import annotations

import fnmatch
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["load_backbone_weights"]


def _skipped(key: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in patterns)


def _read(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with errors that name the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        try:
            needs = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
        except Exception:  # noqa: BLE001 (only the message's detail)
            needs = ""
        names = f" ({needs})" if needs else ""
        raise ValueError(
            f"{str(path)!r} holds pickled objects besides tensors and plain values{names}; it is not read, since "
            "loading it would run code from the file (lfq-kit's checkpoints and `lfq-kit convert`'s outputs need none)"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{str(path)!r} is not a readable PyTorch checkpoint (truncated?): {err}") from err


def load_backbone_weights(
    backbone: nn.Module, path: str | Path, prefix: str = "encoder.", skip_keys: list[str] | None = None
) -> list[str]:
    """Copy the tensors under ``prefix`` of checkpoint ``path`` into ``backbone``; returns the loaded key names.

    The file is read with ``torch.load(weights_only=True)`` (no code from the file runs).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a file that is truncated or holds pickled objects besides tensors and plain values; no
            ``state_dict`` or no key under ``prefix``; missing / unexpected / mis-shaped keys that no
            pattern of ``skip_keys`` names (all listed).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pretrained checkpoint {str(path)!r} not found (a VideoMAEPretraining run writes it, "
            "e.g. `lfq-kit fit --config configs/quickstart_videomae.yaml`, and `lfq-kit convert "
            "videomae` from VideoMAE's released weights)"
        )
    checkpoint = _read(path)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"{str(path)!r} holds no state_dict")
    theirs = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    if not theirs:
        heads = sorted({k.split(".")[0] + "." for k in state})
        raise ValueError(f"{str(path)!r} has no tensor under prefix {prefix!r}; its prefixes: {', '.join(heads)}")
    skip = list(skip_keys or [])
    mine = backbone.state_dict()
    missing = [k for k in mine if k not in theirs and not _skipped(k, skip)]
    unexpected = [k for k in theirs if k not in mine and not _skipped(k, skip)]
    shapes = [
        f"{k} {tuple(theirs[k].shape)} vs {tuple(mine[k].shape)}"
        for k in mine
        if k in theirs and theirs[k].shape != mine[k].shape and not _skipped(k, skip)
    ]
    if missing or unexpected or shapes:
        parts = [
            f"{name}: {', '.join(keys)}"
            for name, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("shape (checkpoint vs model)", shapes),
            )
            if keys
        ]
        raise ValueError(
            f"the {type(backbone).__name__} does not match {str(path)!r} under prefix {prefix!r}; "
            + "; ".join(parts)
            + "; name keys to leave out in `skip_keys`"
        )
    load = {k: v for k, v in theirs.items() if k in mine and not _skipped(k, skip)}
    backbone.load_state_dict(load, strict=False)
    return sorted(load)
