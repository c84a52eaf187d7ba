"""Fixtures of the compression tests: the tiny tokenizer (2× temporal, 2× spatial, LFQ-18) frozen, real frames of
the bundled clips at 16 × 16, and a factorized prior fitted on the tokens of a training clip."""

from fractions import Fraction

import pytest
import torch

from lfq_kit.compression import FactorizedPrior, MaskedLMPrior, fit_factorized_prior
from lfq_kit.compression.rate_distortion import load_clip
from lfq_kit.models import FrozenTokenizer, MaskedLM


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny tensors: one thread avoids OpenMP spin-waiting on a busy machine (5x faster here; see tests/conftest.py).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tok(tokenizer_ckpt) -> FrozenTokenizer:
    return FrozenTokenizer(tokenizer_ckpt)


@pytest.fixture(scope="session")
def carphone16() -> tuple[torch.Tensor, Fraction]:
    """The first 40 frames of the held-out carphone clip, center square at 16 × 16: uint8 (40, 16, 16, 3)."""
    return load_clip("sample:carphone_pristine.mp4", resolution=16, frames=40)


@pytest.fixture(scope="session")
def bikes_tokens(tok) -> torch.Tensor:
    """Tokens of 34 frames of bikes.mp4 at 16 × 16 (two 17-frame clips): (2, 9, 8, 8)."""
    frames, _ = load_clip("sample:bikes.mp4", resolution=16, frames=34)
    video = frames.permute(3, 0, 1, 2).float().div(127.5).sub(1).unflatten(1, (2, 17)).transpose(0, 1)
    return tok.encode(video.contiguous())


@pytest.fixture(scope="session")
def factorized(tok, bikes_tokens) -> FactorizedPrior:
    return fit_factorized_prior([bikes_tokens], tok.codebook_size, tok.hash)


@pytest.fixture
def mlm_prior(mlm_ckpt) -> MaskedLMPrior:
    """The tiny masked LM (grid 3 × 8 × 8: 5-frame 16 × 16 clips), 4 coding steps."""
    return MaskedLMPrior(MaskedLM.load_from_checkpoint(mlm_ckpt, map_location="cpu"), steps=4, path=str(mlm_ckpt))
