"""Checkpoint files that are complete or absent: written beside the target, flushed to disk, renamed into place.

Lightning's ``TorchCheckpointIO`` saves through an fsspec transaction whose temporary file is made by
``tempfile.mkstemp()`` in the system temporary folder. When that folder is on another filesystem than the
checkpoints (a tmpfs ``/tmp``, a network or scratch disk for ``runs/``), the commit is ``shutil.move``, a copy
into the final name: a process killed during the copy leaves a truncated file under the final name (and the
previous ``last.ckpt`` overwritten). Nothing is fsync'ed either, so after a power loss or a node crash the
renamed file may be empty. :class:`AtomicCheckpointIO` writes through :func:`lfq_kit.io.write_file_atomic`: to
``dir/.name.partial`` (same folder, so the rename is atomic), fsync of the file, ``os.replace``, fsync of the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import torch
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..io import write_file_atomic

__all__ = ["AtomicCheckpointIO"]


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
