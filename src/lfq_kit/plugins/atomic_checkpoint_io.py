"""Checkpoint files that are complete or absent: written beside the target, flushed to disk, renamed into place.

Lightning's ``TorchCheckpointIO`` saves through an fsspec transaction whose temporary file is made by
``tempfile.mkstemp()`` in the system temporary folder. When that folder is on another filesystem than the
checkpoints (a tmpfs ``/tmp``, a network or scratch disk for ``runs/``), the commit is ``shutil.move``, a copy
into the final name: a process killed during the copy leaves a truncated file under the final name (and the
previous ``last.ckpt`` overwritten). Nothing is fsync'ed either, so after a power loss or a node crash the
renamed file may be empty. :class:`AtomicCheckpointIO` writes to ``dir/.name.partial`` (same folder, so the
rename is atomic), fsyncs the file, ``os.replace``'s it, then fsyncs the folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any, Callable

import torch
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["PARTIAL_SUFFIX", "AtomicCheckpointIO", "fsync_folder", "partial_path", "remove_partial_files",
           "write_file_atomic"]  # fmt: skip

PARTIAL_SUFFIX = ".partial"
"""Suffix of files being written; not ``.ckpt``, so Lightning's search for ``last*.ckpt`` never picks one."""


def partial_path(path: Path) -> Path:
    """``dir/.name.partial``: the temporary name beside ``path`` (hidden, same filesystem as the target)."""
    return path.with_name(f".{path.name}{PARTIAL_SUFFIX}")


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new link) to disk; a no-op where folders cannot be opened (Windows)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write(file)`` on ``dir/.name.partial``, fsync it, rename it to ``path`` and fsync the folder.

    A process killed at any point leaves ``path`` as it was (absent, or the previous complete file) and at most a
    ``.partial`` file, which :func:`remove_partial_files` deletes. On an exception the partial file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    try:
        with open(tmp, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_folder(path.parent)


def remove_partial_files(folder: Path) -> list[Path]:
    """Delete the ``.*.partial`` files a killed writer left in ``folder``; returns them. Call it only when no
    other process writes into ``folder`` (at the start of a run, on one rank)."""
    stale = sorted(folder.glob(f".*{PARTIAL_SUFFIX}")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _local_path(path: _PATH) -> Path | None:
    """The local path of ``path`` (plain or ``file://``), or None for a remote filesystem."""
    fs, local = url_to_fs(str(path))
    return Path(local) if isinstance(fs, LocalFileSystem) else None


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose local saves are atomic and durable (see the module docstring); loading and
    removing are Lightning's. Remote paths (``s3://``, ``gs://``, ...) go to Lightning's writer, where an
    object appears only once its upload completes.

    :class:`lfq_kit.callbacks.AtomicModelCheckpoint` installs it on the strategy when the Trainer has Lightning's
    default ``TorchCheckpointIO``; name it in ``trainer.plugins`` to use it without that callback.

    Raises:
        TypeError: ``storage_options`` given (as Lightning's ``TorchCheckpointIO``, it takes none).
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        local = _local_path(path)
        if local is None:
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(
                f"AtomicCheckpointIO.save_checkpoint takes no storage_options, got {storage_options!r}: "
                "pass a custom CheckpointIO in trainer.plugins to use them."
            )
        write_file_atomic(local, lambda file: self.write(checkpoint, file))

    def write(self, checkpoint: dict[str, Any], file: IO[bytes]) -> None:
        """Serialize ``checkpoint`` into the open temporary file (``torch.save``, streamed: no in-memory copy)."""
        torch.save(checkpoint, file)
