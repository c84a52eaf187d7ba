"""Reading other projects' checkpoint files safely, reporting layouts that do not match, and writing the converted
lfq-kit checkpoint atomically.

Files made by someone else are read with ``torch.load(weights_only=True)`` (PyTorch's restricted unpickler: tensors,
containers and plain values only) or with safetensors, so loading never runs code from the file. A file whose pickle
needs more (a Lightning ``.ckpt`` whose ``hyper_parameters`` hold OmegaConf objects, say) is refused with the globals
it asks for, unless the user passes ``trust_pickle=True`` (``--trust-pickle`` on the command line).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
import torch
from torch import Tensor

from ..io import write_atomic

__all__ = [
    "ConversionResult",
    "LayoutError",
    "check_key_layout",
    "read_checkpoint_file",
    "save_module_checkpoint",
    "tensor_state",
]

TRUST_FLAG = "--trust-pickle"
"""The command-line flag that accepts the risk of running pickled code from a checkpoint file."""


class LayoutError(ValueError):
    """A checkpoint file that matches no layout a converter knows, or misses keys / has shapes it needs."""


class ConversionResult(NamedTuple):
    """What a converter wrote.

    Attributes:
        output: the lfq-kit checkpoint written.
        source_format: the layout detected in the source (e.g. ``"open-magvit2 .ckpt (EMA)"``, ``"transformers"``).
        tensors: number of tensors copied from the source.
        check: one line describing the forward pass run on a fixed input after conversion (shapes, finiteness).
    """

    output: Path
    source_format: str
    tensors: int
    check: str


def _unsafe_globals(path: Path) -> list[str]:
    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # noqa: BLE001 (a listing only: the refusal below names the file either way)
        return []


def read_checkpoint_file(path: str | os.PathLike, *, trust_pickle: bool = False) -> Any:
    """The object stored in a ``.safetensors``, ``.pth`` / ``.pt`` / ``.bin`` or ``.ckpt`` file, on the CPU.

    Args:
        path: the file. ``.safetensors`` gives a flat ``{name: tensor}`` dict; other files are torch pickles.
        trust_pickle: allow ``torch.load(weights_only=False)``, which runs code named by the file. Only for files
            from a source you trust.

    Raises:
        FileNotFoundError: no file at ``path``.
        LayoutError: the file is empty, truncated or not a checkpoint (the message names the file); or it needs
            pickled objects besides tensors and ``trust_pickle`` is off (the message lists them and names the flag).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} not found")
    if path.stat().st_size == 0:
        raise LayoutError(f"{str(path)!r} is empty")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise LayoutError(f"{str(path)!r} is not a readable safetensors file (truncated?): {err}") from err
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as err:
        if trust_pickle:
            raise LayoutError(f"{str(path)!r} could not be unpickled: {err}") from err
        needs = _unsafe_globals(path)
        what = f" (it names {', '.join(needs)})" if needs else ""
        raise LayoutError(
            f"{str(path)!r} holds pickled objects besides tensors{what}; loading it would run code from the file. "
            f"If you trust its source, pass {TRUST_FLAG}."
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as err:
        raise LayoutError(f"{str(path)!r} is not a readable PyTorch checkpoint (truncated?): {err}") from err


def tensor_state(
    obj: Any, path: str | os.PathLike, containers: Iterable[str] = ("state_dict", "model", "module")
) -> dict[str, Tensor]:
    """The ``{name: tensor}`` dict of a loaded checkpoint: ``obj`` itself or the first of ``containers`` it holds
    (Lightning's ``state_dict``, MCG-NJU's ``model`` / ``module``).

    Raises:
        LayoutError: no dict of tensors found (the message names ``path`` and the top-level keys).
    """
    if isinstance(obj, Mapping):
        for key in containers:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
        tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
        if tensors:
            return tensors
        keys = ", ".join(map(str, list(obj)[:20]))
        raise LayoutError(f"{str(path)!r} holds no tensors under {', '.join(containers)} (top-level keys: {keys})")
    raise LayoutError(f"{str(path)!r} holds a {type(obj).__name__}, not a dict of tensors")


def check_key_layout(
    path: str | os.PathLike, expected: Mapping[str, tuple[int, ...]], found: Mapping[str, Tensor], what: str
) -> None:
    """Compare the converted keys and shapes with those the lfq-kit module expects.

    Args:
        path: the source file (named in the error).
        expected: lfq-kit key → shape.
        found: lfq-kit key → converted tensor.
        what: the layout's name, e.g. ``"Open-MAGVIT2 decoder"``.

    Raises:
        LayoutError: listing every missing key, unexpected key and shape mismatch (source shape vs expected).
    """
    missing = sorted(k for k in expected if k not in found)
    unexpected = sorted(k for k in found if k not in expected)
    shapes = sorted(
        f"{k} {tuple(found[k].shape)} vs {tuple(expected[k])}"
        for k in expected
        if k in found and tuple(found[k].shape) != tuple(expected[k])
    )
    if missing or unexpected or shapes:
        parts = [
            f"{name}: {', '.join(keys)}"
            for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape (file vs model)", shapes))
            if keys
        ]
        raise LayoutError(f"{str(path)!r} does not match the {what} layout; " + "; ".join(parts))


def save_module_checkpoint(module: L.LightningModule, path: str | os.PathLike) -> Path:
    """Write ``module`` as a Lightning checkpoint (``state_dict``, ``hyper_parameters``, version) that
    ``type(module).load_from_checkpoint`` reads back; atomic (a temporary file renamed into place), so a failed
    conversion leaves no file under ``path``. Returns ``path``."""
    checkpoint = {
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()},
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": L.__version__,
        "epoch": 0,
        "global_step": 0,
    }
    return write_atomic(path, lambda tmp: torch.save(checkpoint, tmp))
