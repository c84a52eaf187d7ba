"""The CPU Trainer of module tests: no logger, checkpoints, progress bar, model summary or sanity validation."""

from pathlib import Path
from typing import Any

import lightning as L


def quiet_trainer(tmp_path: Path, **overrides: Any) -> L.Trainer:
    """A ``Trainer`` on the CPU writing under ``tmp_path``; ``overrides`` (any Trainer argument) win over the
    defaults (``logger=False``, ``enable_checkpointing=False``, no progress bar, no summary, no sanity steps)."""
    settings: dict[str, Any] = {
        "default_root_dir": tmp_path,
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
    }
    return L.Trainer(**{**settings, **overrides})
