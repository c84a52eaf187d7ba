"""Faults for the fault-tolerance tests: a simulated kill at the n-th filesystem change (in-process), a checkpoint
writer that stalls half-way through a chosen step's file, and a progress file a parent process watches to kill a
training subprocess at a chosen step."""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path
from typing import IO, Any

import lightning as L
import pytest

from lfq_kit.plugins import AtomicCheckpointIO

_MUTATIONS = (  # every call that changes a folder's entries on the way to a checkpoint or a link
    (os, "remove"),
    (os, "unlink"),
    (os, "rename"),
    (os, "replace"),
    (os, "symlink"),
    (shutil, "rmtree"),
    (shutil, "move"),
)


class Killed(BaseException):
    """Stands for SIGKILL: a BaseException, so no ``except Exception`` handler on the way swallows it."""


def kill_at_mutation(monkeypatch: pytest.MonkeyPatch, n: int) -> list[str]:
    """From now on, raise :class:`Killed` instead of performing the ``n``-th (1-based) filesystem change; returns
    the names of the changes performed so far (filled as they happen). The real functions run for the others; a
    wrapper calling another (``shutil.move`` calls ``os.rename``) counts once. ``monkeypatch.undo()`` disarms it."""
    done: list[str] = []
    depth = [0]

    def wrap(name: str, real: Any):
        def fake(*args, **kwargs):
            if depth[0]:
                return real(*args, **kwargs)
            if len(done) + 1 == n:
                raise Killed(f"killed at {name}{args}")
            done.append(name)
            depth[0] += 1
            try:
                return real(*args, **kwargs)
            finally:
                depth[0] -= 1

        return fake

    for mod, name in _MUTATIONS:
        monkeypatch.setattr(mod, name, wrap(name, getattr(mod, name)))
    return done


class StallingCheckpointIO(AtomicCheckpointIO):
    """Writes the checkpoint of step ``stall_at_step`` half-way, creates ``marker`` and sleeps, so that the test
    kills the process in the middle of a write; every other checkpoint is written normally."""

    def __init__(self, stall_at_step: int, marker: str) -> None:
        super().__init__()
        self.stall_at_step = stall_at_step
        self.marker = marker

    def write(self, checkpoint: dict[str, Any], file: IO[bytes]) -> None:
        if checkpoint.get("global_step") != self.stall_at_step:
            super().write(checkpoint, file)
            return
        buffer = io.BytesIO()
        super().write(checkpoint, buffer)
        data = buffer.getvalue()
        file.write(data[: len(data) // 2])
        file.flush()
        Path(self.marker).write_text(str(len(data)))
        time.sleep(600)


class ProgressFile(L.Callback):
    """Writes the global step into ``path`` at the start of every training batch (atomically, so a reader never
    sees an empty file)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        tmp = f"{self.path}.tmp"
        Path(tmp).write_text(str(trainer.global_step))
        os.replace(tmp, self.path)
