"""Tiny training runs for the resume and kill tests, and the comparison of two checkpoints' every tensor.

:func:`tokenizer_run_config` is a ``lfq-kit fit`` config: the tiny MAGVIT-v2 tokenizer with its GAN (discriminator
from step 1, R1 every 2 steps, LeCAM, EMA) on the real sample clips (random 5-frame 16 × 16 crops of 32 × 32 clips,
random flips, cached frames), deterministic, a checkpoint (``last.ckpt`` a link) after every step. Three steps make an
epoch, then one validation batch; the run crosses two epoch boundaries.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizer_checkpoint import TINY_BACKBONE

ROOT = Path(__file__).resolve().parents[2]
HELPERS = Path(__file__).resolve().parent

# Saved by callbacks and the Trainer but expected to differ between runs in other folders or processes.
_IGNORED_KEYS = {
    "hyper_parameters",
    "datamodule_hyper_parameters",
    "hparams_name",
    "datamodule_hparams_name",
    "pytorch-lightning_version",
}
_PATH_CALLBACKS = ("ModelCheckpoint", "Timer")  # their states (by name, subclasses too) hold folders, wall-clock times


def tokenizer_run_config(
    folder: Path,
    max_steps: int = 7,
    every_n_train_steps: int = 1,
    extra_callbacks: Sequence[dict] = (),
    plugins: Sequence[dict] = (),
) -> dict:
    """The run described in the module docstring, writing into ``folder`` (checkpoints in ``folder/checkpoints``)."""
    backbone = {**TINY_BACKBONE}
    return {
        "seed_everything": 0,
        "trainer": {
            "default_root_dir": str(folder),
            "accelerator": "cpu",
            "devices": 1,
            "precision": 32,
            "deterministic": True,
            "max_steps": max_steps,
            "max_epochs": -1,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "limit_val_batches": 1,
            "num_sanity_val_steps": 0,
            "plugins": list(plugins) or None,
            "callbacks": [
                {
                    "class_path": "lfq_kit.callbacks.AtomicModelCheckpoint",
                    "init_args": {
                        "dirpath": str(folder / "checkpoints"),
                        "every_n_train_steps": every_n_train_steps,
                        "save_last": "link",
                    },
                },
                *extra_callbacks,
            ],
        },
        "model": {
            "class_path": "lfq_kit.models.VideoTokenizer",
            "init_args": {
                "encoder": {"class_path": "Magvit2Encoder", "init_args": {"out_channels": 6, **backbone}},
                "decoder": {"class_path": "Magvit2Decoder", "init_args": {"in_channels": 6, **backbone}},
                "quantizer": {"class_path": "LFQ"},
                "discriminator": {
                    "class_path": "StyleGANDiscriminator3d",
                    "init_args": {"base_channels": 8, "channel_multipliers": [1, 2]},
                },
                "disc_start": 1,
                "r1_every": 2,
                "lecam_weight": 0.1,
                "lecam_decay": 0.9,
                "ema_decay": 0.9,
                "warmup_steps": 2,
                "decay_steps": max_steps,
            },
        },
        "data": {
            "class_path": "SampleClipsDataModule",
            "init_args": {
                "frames_per_clip": 5,
                "resolution": 32,
                "batch_size": 2,
                "num_workers": 0,
                "clips_per_epoch": 6,
                "clips_per_video": 2,
                "train_crop_size": 16,
                "random_flip": True,
                "cache_frames": True,
                "pin_memory": False,
            },
        },
    }


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # the helpers (test-only callbacks and plugins) importable by class_path; one thread each, as in CI
    env["PYTHONPATH"] = os.pathsep.join([str(HELPERS), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def fit_command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lfq_kit", "fit", "-c", str(config), *extra]


def run_fit(config: Path, *extra: str, cwd: Path, timeout: float = 120) -> None:
    """Run ``lfq-kit fit`` to completion in a subprocess; raises with its output if it fails."""
    done = subprocess.run(
        fit_command(config, *extra), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise AssertionError(f"lfq-kit fit failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")


def kill_fit_when(config: Path, ready: Callable[[], bool], cwd: Path, timeout: float = 120) -> None:
    """Start ``lfq-kit fit``, SIGKILL it as soon as ``ready()`` is true; raises if it ends or times out first."""
    process = subprocess.Popen(
        fit_command(config), cwd=cwd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            if process.poll() is not None:
                raise AssertionError(
                    f"lfq-kit fit ended ({process.returncode}) before the kill:\n{process.stderr.read()[-6000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError("lfq-kit fit did not reach the kill point in time")
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stderr.close()


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def comparable(checkpoint: Mapping[str, Any]) -> dict:
    """The checkpoint without what legitimately differs between two runs in other folders: configs and hparams,
    and the states of ModelCheckpoint (paths) and Timer (wall-clock) callbacks."""
    out = {k: v for k, v in checkpoint.items() if k not in _IGNORED_KEYS}
    if "callbacks" in out:
        out["callbacks"] = {k: v for k, v in out["callbacks"].items() if not any(name in k for name in _PATH_CALLBACKS)}
    return out


def differences(a: Any, b: Any, path: str = "checkpoint") -> list[str]:
    """Every leaf where ``a`` and ``b`` differ (tensors by exact equality, dtype and shape included)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out = [f"{path}: keys {sorted(map(str, set(a) ^ set(b)))} in one only"] if set(a) != set(b) else []
        for key in a.keys() & b.keys():
            out += differences(a[key], b[key], f"{path}[{key!r}]")
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{path}[{i}]")]
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        same = a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
        if same:
            return []
        gap = (a.double() - b.double()).abs().max().item() if a.shape == b.shape and a.numel() else "n/a"
        return [f"{path}: tensors differ (max |diff| {gap})"]
    if type(a) is not type(b) or a != b:
        return [f"{path}: {a!r} != {b!r}"]
    return []


def assert_same_checkpoint(a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    """Every tensor and value of two checkpoints equal (see :func:`comparable`), with the list of what differs."""
    diff = differences(comparable(a), comparable(b))
    assert not diff, f"{len(diff)} differences:\n" + "\n".join(sorted(diff)[:60])


def every_step_checkpoints(folder: Path) -> list[dict]:
    """``trainer.callbacks`` for the in-process resume tests: a checkpoint after every step, all kept."""
    return [
        {
            "class_path": "lfq_kit.callbacks.AtomicModelCheckpoint",
            "init_args": {
                "dirpath": str(folder / "checkpoints"),
                "every_n_train_steps": 1,
                "save_top_k": -1,
                "save_last": "link",
                "save_on_train_end": True,
            },
        }
    ]


def trainer_overrides(folder: Path, max_steps: int) -> list[str]:
    """Command-line overrides making a shipped config a tiny deterministic CPU run writing only into ``folder``."""
    return [
        f"--trainer.default_root_dir={folder}",
        f"--trainer.max_steps={max_steps}",
        "--trainer.max_epochs=-1",
        "--trainer.max_time=null",
        "--trainer.accelerator=cpu",
        "--trainer.devices=1",
        "--trainer.strategy=auto",
        "--trainer.precision=32",
        "--trainer.deterministic=true",
        "--trainer.logger=false",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_model_summary=false",
        "--trainer.limit_val_batches=1",
        "--trainer.num_sanity_val_steps=0",
        "--trainer.val_check_interval=null",
        "--trainer.check_val_every_n_epoch=1",
        "--seed_everything=0",
        f"--trainer.callbacks={json.dumps(every_step_checkpoints(folder))}",
    ]


def assert_resume_is_exact(fit: Callable[[Path, str | None], None], folder: Path, resume_at: list[str]) -> dict:
    """Run ``fit(run folder, None)`` uninterrupted (a checkpoint per step), then ``fit(other folder, checkpoint)``
    from each checkpoint whose name contains ``resume_at[i]`` (e.g. ``"step=2."``); every resumed run's
    ``last.ckpt`` must equal the uninterrupted one's. Returns the uninterrupted final checkpoint."""
    fit(folder / "full", None)
    full = load(folder / "full" / "checkpoints" / "last.ckpt")
    for i, name in enumerate(resume_at):
        [start] = [
            p for p in (folder / "full" / "checkpoints").glob("*.ckpt") if name in p.name and p.name != "last.ckpt"
        ]
        resumed_folder = folder / f"resumed{i}"
        fit(resumed_folder, str(start))
        final = load(resumed_folder / "checkpoints" / "last.ckpt")
        assert final["global_step"] == full["global_step"] > load(start)["global_step"]
        diff = differences(comparable(final), comparable(full))
        assert not diff, f"resumed from {start.name}: {len(diff)} differences:\n" + "\n".join(sorted(diff)[:60])
    return full
