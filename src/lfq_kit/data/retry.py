"""Replacing samples whose file fails to decode: the retry loop shared by the clip and image datasets.

Runtime half of the bad-file policy (docs/data.md). A sample whose file fails to decode is replaced by
another: a random other index in training, the next index in evaluation (so evaluation stays
deterministic); after ``max_retries`` consecutive failures a ``RuntimeError`` says the data is broken
beyond skipping. In training a failed file is remembered per process and not decoded again. Every replaced
sample's file and reason go into the returned sample's ``skipped`` / ``skip_reasons`` lists, which cross
worker processes inside the batch (see :mod:`lfq_kit.data.skips`). With ``on_error="raise"`` the
:class:`~lfq_kit.data.decode.VideoDecodeError` propagates.

The random replacement draws from torch's global generator, which the datasets seed per sample in training
(:mod:`lfq_kit.seeding`): the replacements of a sample are then the same in every process. A failed file
remembered by one worker skips its decoding but not its draws (the clip's start is drawn before decoding, the
crop and flip only after a successful one), so the draws do not depend on what a worker saw before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

import torch

from .decode import VideoDecodeError

__all__ = ["Attempt", "OnError", "RetryingReader"]

OnError = Literal["skip", "raise"]


class Attempt(NamedTuple):
    """One try at a dataset index.

    Attributes:
        key: what a failure is remembered by in training (the video or image the index maps to).
        path: the file, as reported in ``skipped``.
        read: decodes the file and builds the sample dict; raises ``VideoDecodeError`` when it cannot.
    """

    key: int
    path: str
    read: Callable[[], dict[str, Any]]


class RetryingReader:
    """The replace-on-failure loop of a map-style dataset of ``size`` samples.

    Args:
        train: replace by a uniformly random other index and remember failed keys (else: the next index).
        on_error: ``"skip"`` replaces failed samples, ``"raise"`` lets the ``VideoDecodeError`` through.
        max_retries: consecutive failures tolerated for one item before giving up.
        noun: what a sample is, for the error message (``"clips"``, ``"images"``).
        files: what the files are, for the error message (``"videos"``, ``"images"``).

    Attributes:
        known_bad: key → reason of the failures remembered in this process (training only).
    """

    def __init__(self, train: bool, on_error: OnError, max_retries: int, noun: str, files: str) -> None:
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {max_retries!r}")
        self.train = train
        self.on_error: OnError = on_error
        self.max_retries = max_retries
        self.noun, self.files = noun, files
        self.known_bad: dict[int, str] = {}

    def replacement(self, index: int, size: int) -> int:
        """The index tried after ``index`` fails (``index`` itself when it is the only one)."""
        if size == 1:
            return index
        if self.train:  # uniformly among the other indices
            other = int(torch.randint(size - 1, ()).item())
            return other + (other >= index)
        return (index + 1) % size

    def __call__(self, index: int, size: int, attempt: Callable[[int], Attempt]) -> dict[str, Any]:
        """The sample of ``index``, or of its replacements, with ``skipped`` and ``skip_reasons`` added.

        Raises:
            VideoDecodeError: ``on_error="raise"`` and the file fails to decode.
            RuntimeError: ``max_retries + 1`` consecutive attempts failed.
        """
        skipped: list[str] = []
        reasons: list[str] = []
        for _ in range(self.max_retries + 1):
            key, path, read = attempt(index)
            reason = self.known_bad.get(key)
            if reason is None:
                try:
                    sample = read()
                except VideoDecodeError as err:
                    if self.on_error == "raise":
                        raise
                    reason = err.reason
                    if self.train:  # evaluation stays deterministic whatever a worker saw before
                        self.known_bad[key] = reason
                else:
                    sample["skipped"], sample["skip_reasons"] = skipped, reasons
                    return sample
            skipped.append(path)
            reasons.append(reason)
            index = self.replacement(index, size)
        raise RuntimeError(
            f"{len(skipped)} consecutive {self.noun} failed to decode, e.g. {skipped[-1]}: {reasons[-1]}; "
            f"too many unreadable {self.files} to skip"
        )
