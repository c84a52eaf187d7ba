"""The one seed mixer of lfq-kit: every random choice of a training sample (clip start, crop, flip, replacement
of a bad file, camera path) is a pure function of ``(base seed, epoch, dataset index)``, and every training step's
draws (:class:`~lfq_kit.models._step_seed.StepSeeded`) of ``(base seed, batch count, rank)``.

The training sampler (:class:`~lfq_kit.data.epoch_sampler.EpochSampler`) yields :class:`SampleKey` s
``(index, seed)`` with ``seed = sample_seed(base, epoch, index)``; the DataLoader hands them to the dataset's
``__getitem__``, which runs the item's existing ``torch`` random calls under :func:`seeded`: the global CPU
generator forked (the caller's state is restored afterwards) and seeded with the key's seed. So a sample does
not depend on ``num_workers``, on worker seeding, on which rank reads it, or on what was read before it, and a
run resumed mid-epoch reproduces it exactly. A plain ``int`` index still works (direct use, evaluation): it
draws from the global generator as before.

The base seed (:func:`base_seed`): an explicit ``seed`` argument of the DataModule, else the seed of
Lightning's ``seed_everything`` (environment variable ``PL_GLOBAL_SEED``), else :data:`DEFAULT_SEED`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch

__all__ = [
    "DEFAULT_SEED",
    "SampleKey",
    "base_seed",
    "mix_seed",
    "order_seed",
    "sample_seed",
    "seeded",
    "split_key",
    "step_seed",
]

#: Base seed when neither the DataModule's ``seed`` nor ``PL_GLOBAL_SEED`` is set.
DEFAULT_SEED = 0

# Domain tags keep the permutation's, the samples' and the training steps' seeds unrelated even for equal inputs.
_SAMPLE, _ORDER, _STEP = 1, 2, 3


class SampleKey(NamedTuple):
    """What the training sampler yields and a dataset's ``__getitem__`` accepts instead of an ``int``.

    Attributes:
        index: the dataset index, ``0 <= index < len(dataset)``.
        seed: the seed the item's random calls run under (:func:`sample_seed`), in ``[0, 2^63)``.
    """

    index: int
    seed: int


def base_seed(seed: int | None = None) -> int:
    """``seed`` if given, else ``int(PL_GLOBAL_SEED)`` (set by ``lightning.seed_everything``), else
    :data:`DEFAULT_SEED`.

    Raises:
        ValueError: ``PL_GLOBAL_SEED`` is set but not an integer.
    """
    if seed is not None:
        return int(seed)
    env = os.environ.get("PL_GLOBAL_SEED")
    if env is None or env == "":
        return DEFAULT_SEED
    try:
        return int(env)
    except ValueError:
        raise ValueError(f"PL_GLOBAL_SEED must be an integer, got {env!r}") from None


def mix_seed(*parts: int) -> int:
    """A 63-bit seed hashed (BLAKE2b) from integers: unrelated outputs for any two different inputs, unlike
    ``seed + epoch`` (where seed 1, epoch 0 equals seed 0, epoch 1)."""
    data = b"".join(int(p).to_bytes(16, "little", signed=True) for p in parts)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


def sample_seed(base: int, epoch: int, index: int) -> int:
    """The seed of training sample ``index`` in ``epoch`` (see the module docstring)."""
    return mix_seed(_SAMPLE, base, epoch, index)


def order_seed(base: int, epoch: int) -> int:
    """The seed of the epoch's permutation of the dataset (see :class:`~lfq_kit.data.epoch_sampler.EpochSampler`)."""
    return mix_seed(_ORDER, base, epoch)


def step_seed(base: int, step: int, rank: int) -> int:
    """The seed of torch's global generator at training batch ``step`` on ``rank`` (in ``[0, 2^63)``; see
    :class:`~lfq_kit.models._step_seed.StepSeeded`)."""
    return mix_seed(_STEP, base, step, rank)


def split_key(key: object) -> tuple[int, int | None]:
    """``(index, seed)`` of a :class:`SampleKey` (or a 2-sequence of ints); ``(index, None)`` of an integer.

    Raises:
        TypeError: ``key`` is neither an integer nor an ``(index, seed)`` pair.
    """
    if isinstance(key, tuple) and len(key) == 2:
        return int(key[0]), int(key[1])
    try:
        return int(key.__index__()), None  # int, numpy and 0-d torch integers; not floats
    except (AttributeError, TypeError):
        raise TypeError(f"a dataset index must be an int or a SampleKey(index, seed), got {key!r}") from None


@contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's global CPU generator seeded with ``seed`` and restore the caller's state after
    (``torch.random.fork_rng(devices=[])``); ``None``: the global generator as it is. Only the CPU generator is
    seeded (``torch.default_generator``), so a GPU generator of the main process is never touched."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield
