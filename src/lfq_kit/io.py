"""Files that are complete or absent: every file lfq-kit writes goes through here.

The content is written to a partial file beside the target (``dir/.NAME.partial``: same folder, so the rename is
atomic; hidden; not ending in the target's suffix, so no search for ``*.ckpt`` or ``*.mp4`` picks it up), the file
is fsync'ed, ``os.replace``'d over the target, and the folder is fsync'ed. A process killed at any point leaves the
target as it was (absent, or the previous complete file) and at most a partial file, which
:func:`remove_partial_files` deletes; on an exception the partial file is removed. Without the fsyncs a rename can
reach the disk before the data, and a power loss or node crash leaves an empty file under the final name.

Writers that other processes may run on the same target at the same time (a cache shared by runs and ranks) pass
``shared=True``: the partial name then carries a random part (``dir/.NAME.1f2e3d4c.partial``), so two writers never
write into one partial file; the last rename wins and both results are complete.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "PARTIAL_SUFFIX",
    "PartialFile",
    "fsync_folder",
    "partial_path",
    "remove_partial_files",
    "write_atomic",
    "write_file_atomic",
]

PARTIAL_SUFFIX = ".partial"
"""Suffix of files being written; not ``.ckpt``, so Lightning's search for ``last*.ckpt`` never picks one."""


def partial_path(path: Path, shared: bool = False) -> Path:
    """``dir/.NAME.partial``, the name ``path`` is written under until complete; ``shared``:
    ``dir/.NAME.XXXXXXXX.partial``, with a random part (see the module docstring)."""
    unique = f".{secrets.token_hex(4)}" if shared else ""
    return path.with_name(f".{path.name}{unique}{PARTIAL_SUFFIX}")


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new link) to disk; a no-op where folders cannot be opened (Windows)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartialFile:
    """A file being written under its partial name (:attr:`partial`) until :meth:`commit` moves it to :attr:`path`.

    For writers that open the file themselves and over time (a video muxer, a streamed container). As a context
    manager it commits when the block ends normally and discards on an exception; close whatever wrote the file
    first (inner ``with``). Parent folders of ``path`` are created.

    Args:
        path: the final file.
        shared: other processes may write ``path`` at the same time (see the module docstring).
    """

    def __init__(self, path: str | os.PathLike, shared: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = partial_path(self.path, shared)

    def commit(self) -> Path:
        """fsync the partial file, rename it to :attr:`path` and fsync the folder. Returns :attr:`path`.

        Raises:
            FileNotFoundError: nothing was written under :attr:`partial`.
        """
        try:
            _fsync_file(self.partial)
            os.replace(self.partial, self.path)
        finally:
            self.discard()
        fsync_folder(self.path.parent)
        return self.path

    def discard(self) -> None:
        """Delete the partial file, if any; :attr:`path` is left as it was. Safe to call twice."""
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> PartialFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object], shared: bool = False) -> Path:
    """Call ``write(partial path)``, then move the file into place as the module docstring says (parent folders
    created); on an exception nothing appears under ``path``. Returns ``path`` as a ``Path``.

    ``write`` gets a name that does not end with ``path``'s suffix: writers that choose a format by the suffix must
    be told it (``image.save(tmp, format="PNG")``)."""
    with PartialFile(path, shared) as file:
        write(file.partial)
    return file.path


def write_file_atomic(path: str | os.PathLike, write: Callable[[IO[bytes]], object], shared: bool = False) -> Path:
    """:func:`write_atomic` for writers that take an open binary file: ``write(file)``. Returns ``path``."""

    def stream(partial: Path) -> None:
        with open(partial, "wb") as file:
            write(file)

    return write_atomic(path, stream, shared)


def remove_partial_files(folder: Path) -> list[Path]:
    """Delete the ``.*.partial`` files a killed writer left in ``folder``; returns them. Call it only when no
    other process writes into ``folder`` (at the start of a run, on one rank)."""
    stale = sorted(folder.glob(f".*{PARTIAL_SUFFIX}")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
