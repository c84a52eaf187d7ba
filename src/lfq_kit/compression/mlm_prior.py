"""The ``mlm`` prior: the masked LM (MaskGIT / MAGVIT-v2 Sec. 4) as a context model for entropy coding.

A chunk's ``N`` token positions are put in a fixed order (a permutation derived from a seed stored in the header,
:func:`coding_order`) and split into groups by MaskGIT's decoding schedule
(:func:`lfq_kit.models._maskgit.decoding_mask_counts`: few tokens first, many at the end, when most context is
known). Group ``s`` is coded under the LM's distributions given groups ``0 … s−1`` (the rest masked), with the
null class (unconditional); within a group each token's sub-tokens are coded under their own ``S``-way head
(the heads are factorized, ``p(id) = Π_k p_k(sub_k)``). The decoder runs the same steps, filling each group in
before the next forward pass.

Determinism (any batch size or device on either side decodes the same tokens): the network runs in
float64, its log-probabilities are rounded to a 1/16-nat grid and mapped to integer weights by a fixed table
(:func:`lfq_kit.compression.range_coding.log_prob_weights`). A batch of 8 and a batch of 1 give float64 logits
that differ by about 1e-15, far below the grid, so the weights agree unless a log-probability lies within that
distance of a grid boundary: roughly a 1e-13 chance per value, 1e-7 per 17 × 64 × 64 chunk. Other devices and BLAS
libraries (a GPU's float64 matmul) differ by similar amounts. Should it ever happen, the chunk's token checksum
fails and decompression says so, naming the chunk; no wrong video is written.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..models._maskgit import decoding_mask_counts
from ..models.masked_lm import MaskedLM
from .prior import TokenPrior
from .range_coding import RangeDecoderStream, encode_symbols, ideal_bits, log_prob_weights

__all__ = ["MaskedLMPrior", "coding_order", "coding_groups", "masked_lm_hash"]

_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)  # SplitMix64 constants


def coding_order(num_tokens: int, seed: int) -> np.ndarray:
    """A permutation of ``range(num_tokens)`` fixed by ``seed``: positions sorted by SplitMix64 of
    ``position + seed · φ`` (integer arithmetic mod 2^64, the same on every platform and library version)."""
    with np.errstate(over="ignore"):
        z = np.arange(num_tokens, dtype=np.uint64) + np.uint64(seed) * np.uint64(_MIX[0]) + np.uint64(_MIX[0])
        z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX[1])
        z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX[2])
        z = z ^ (z >> np.uint64(31))
    return np.argsort(z, kind="stable").astype(np.int64)


def coding_groups(num_tokens: int, steps: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of the coding order coded at each step (MaskGIT's schedule); 256 tokens in 12 steps
    give groups of 3, 6, 11, 15, 18, 22, 26, 27, 31, 31, 33, 33."""
    remaining = [num_tokens, *decoding_mask_counts(num_tokens, steps)]
    return [(num_tokens - a, num_tokens - b) for a, b in zip(remaining, remaining[1:])]


def masked_lm_hash(model: MaskedLM) -> str:
    """Hex sha256 of a masked LM's class, vocabulary, grid and every tensor of its state dict (the frozen tokenizer is
    not part of it; the masked LM checks that one itself)."""
    digest = hashlib.sha256(f"{type(model.backbone).__qualname__};{model.codebook_size};{model.grid};".encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


class MaskedLMPrior(TokenPrior):
    """Entropy coding under a trained :class:`~lfq_kit.models.MaskedLM`.

    Args:
        model: the masked LM; the prior takes it over (eval mode, float64, moved to ``device``).
        steps: coding steps (groups); more steps give each group more context (fewer bits) and cost one forward
            pass each, on both sides.
        seed: fixes the coding order of positions.
        device: where the network runs (``"cpu"`` or ``"cuda"``); files decode on any device.
        path: the checkpoint it came from (a hint stored in compressed files).

    Raises:
        ValueError: ``steps`` outside ``[1, N]`` for the model's ``N`` tokens, or a seed outside ``[0, 2^32)``.
    """

    kind = "mlm"

    def __init__(
        self,
        model: MaskedLM,
        steps: int = 12,
        seed: int = 0,
        device: str | torch.device = "cpu",
        path: str | None = None,
    ) -> None:
        self.grid = tuple(int(g) for g in model.grid)
        self.num_tokens = math.prod(self.grid)
        if not 0 <= seed < 1 << 32:
            raise ValueError(f"the coding-order seed must lie in [0, 2^32), got {seed}")
        self.groups = coding_groups(self.num_tokens, steps)  # checks steps
        self.steps, self.seed = int(steps), int(seed)
        self.weights_hash = masked_lm_hash(model)
        self.model = model.eval().requires_grad_(False).to(device=torch.device(device), dtype=torch.float64)
        self.codebook_size = int(model.codebook_size)
        self.sub_vocab, self.num_groups = int(model.tokens.sub_vocab), int(model.tokens.num_groups)
        self.order = torch.from_numpy(coding_order(self.num_tokens, self.seed))
        tok = model.frozen_tokenizer
        self.tokenizer_hash = tok.hash if tok is not None else None
        clip = model.hparams.get("clip_size")
        self.clip_size = tuple(clip) if clip is not None else None
        self.hint = path

    @classmethod
    def load(
        cls, checkpoint: str | Path, steps: int = 12, seed: int = 0, device: str | torch.device = "cpu"
    ) -> MaskedLMPrior:
        """Load a masked LM checkpoint (``lfq-kit fit --config configs/quickstart_mlm.yaml`` writes one).

        Raises:
            FileNotFoundError: no such file.
        """
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(
                f"masked LM checkpoint {str(path)!r} not found; train one with "
                "`lfq-kit fit --config configs/quickstart_mlm.yaml`"
            )
        model = MaskedLM.load_from_checkpoint(path, map_location="cpu")
        return cls(model, steps, seed, device, str(path))

    @property
    def identity(self) -> str:
        return hashlib.sha256(f"mlm:v1:{self.weights_hash}:{self.steps}:{self.seed}".encode()).hexdigest()

    @property
    def params(self) -> tuple[int, int]:
        return (self.steps, self.seed)

    def check_grid(self, grid: tuple[int, int, int]) -> None:
        if tuple(grid) != self.grid:
            clip = f" (clips of {' × '.join(map(str, self.clip_size))})" if self.clip_size else ""
            raise ValueError(
                f"the masked LM prior {self.hint or ''} models token grids {self.grid}{clip}, but the "
                f"chunk's token grid is {tuple(grid)}; compress clips of the size it was trained on"
            )

    def required_chunk_frames(self) -> int | None:
        return int(self.clip_size[0]) if self.clip_size else None

    # -- coding --------------------------------------------------------------------------------------

    @torch.no_grad()
    def _weights(self, current: Tensor, positions: Tensor) -> np.ndarray:
        """Integer weights ``(B, M, g, S)`` of the sub-tokens at ``positions`` (M,) given ``current`` (B, N)."""
        labels = torch.full((current.shape[0],), self.model.null_class, dtype=torch.long, device=current.device)
        hidden = self.model.hidden(current, labels)[:, positions]
        return log_prob_weights(self.model.logits(hidden).log_softmax(-1))

    def _steps(self, ids: Tensor) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Encoder side: per step, the sub-tokens ``(B, M·g)`` of the group and their weights ``(B, M·g, S)``."""
        device = self.model.device
        ids = ids.detach().to(device).long().flatten(1)
        current = torch.full_like(ids, self.model.mask_id)
        for lo, hi in self.groups:  # a loop over coding steps; each is one batched forward pass
            positions = self.order[lo:hi].to(device)
            weights = self._weights(current, positions)
            subs = self.model.tokens.split(ids[:, positions]).cpu().numpy()
            yield subs.reshape(len(ids), -1), weights.reshape(len(ids), -1, self.sub_vocab)
            current[:, positions] = ids[:, positions]

    def encode(self, ids: Tensor) -> list[bytes]:
        parts: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(ids.shape[0])]
        for subs, weights in self._steps(ids):
            for b in range(len(parts)):  # per chunk: each has its own stream
                parts[b].append((subs[b], weights[b]))
        return [encode_symbols(p) for p in parts]

    def decode(self, payloads: Sequence[bytes], grid: tuple[int, int, int]) -> Tensor:
        self.check_grid(grid)
        device = self.model.device
        streams = [RangeDecoderStream(p) for p in payloads]
        current = torch.full((len(streams), self.num_tokens), self.model.mask_id, dtype=torch.long, device=device)
        for lo, hi in self.groups:
            positions = self.order[lo:hi].to(device)
            weights = self._weights(current, positions).reshape(len(streams), -1, self.sub_vocab)
            subs = np.stack([s.decode(w) for s, w in zip(streams, weights)])  # (B, M·g)
            subs = torch.from_numpy(subs).view(len(streams), hi - lo, self.num_groups).to(device)
            current[:, positions] = self.model.tokens.merge(subs)
        return current.cpu().view(len(streams), *grid)

    def ideal_bits(self, ids: Tensor) -> list[float]:
        total = [0.0] * ids.shape[0]
        for subs, weights in self._steps(ids):
            for b in range(len(total)):
                total[b] += ideal_bits(subs[b], weights[b])
        return total
