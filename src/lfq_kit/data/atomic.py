"""Writing files atomically: the content goes to a temporary file beside the target, which is renamed into place,
so an interrupted run never leaves a partial file under the final name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

__all__ = ["temporary_path", "write_atomic"]


def temporary_path(path: Path) -> Path:
    """``dir/.name.tmp.suffix`` beside ``path``; it keeps the suffix, by which muxers and image writers pick a format."""
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary path)``, then rename it to ``path`` (parent folders created); on an exception the
    temporary file is removed and nothing appears under ``path``. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
