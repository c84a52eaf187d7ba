"""The ``factorized`` prior: tokens coded independently of each other (the same distribution at every position),
each sub-token by sub-token, fitted on a tokenizer's tokens and stored in a small safetensors file beside its
checkpoint.

A token id splits into ``g`` sub-tokens of ``S`` values (``id = Σ_k sub_k · S^k``, the masked LM's factorization:
sub-token A = bits 0–8 and B = bits 9–17 of an 18-bit LFQ id, :func:`lfq_kit.nn.factorized_tokens.split_tokens`).
Sub-token 0 is coded under its marginal, sub-token ``k ≥ 1`` under its distribution given sub-token ``k − 1``
(``p(id) = p(A) · p(B | A)`` for 2^18 ids): a tokenizer that uses few of its codes (the quickstart's uses about
7,000 of 2^18 on its training clips) makes ``p(A) · p(B)`` spread mass over pairs of frequent halves that never
occur, and the conditional table takes 1.3 bits per token off that on the held-out clip.

Fitting counts sub-tokens and pairs of consecutive sub-tokens (exact int64), then in float64 on CPU:
marginals ``m_k = (count + ½) / (total + S/2)``, conditionals ``(pair count + α · m_k) / (count of the previous value
+ α)`` (a Dirichlet prior of strength ``α`` = 32 toward the marginal, so rare previous values fall back on it), and
fixed-point weights ``max(1, round(2^20 · p))`` stored as int64: the file holds the integers the coder uses, so
encoder and decoder cannot disagree. The file carries the tokenizer's hash; a prior of another tokenizer is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..io import write_atomic
from ..nn.factorized_tokens import merge_tokens, split_tokens
from .prior import TokenPrior
from .range_coding import WEIGHT_BITS, RangeDecoderStream, encode_symbols, ideal_bits

__all__ = ["FactorizedPrior", "default_num_groups", "fit_factorized_prior", "sidecar_path"]

_FORMAT = "lfq-kit factorized prior v1"
_MAX_SUB_VOCAB = 4096


def sidecar_path(tokenizer_checkpoint: str | Path) -> Path:
    """Where a tokenizer's factorized prior lives by default: ``last.ckpt`` → ``last.prior.safetensors``."""
    return Path(tokenizer_checkpoint).with_suffix(".prior.safetensors")


def default_num_groups(codebook_size: int) -> int:
    """1 (one categorical over all ids) for a vocabulary of at most 65536 ids; else the fewest sub-token groups ``g``
    with ``S = K^(1/g)`` an integer of at most 4096 (2 for 2^18: ``S = 512``, the masked LM's factorization).

    Raises:
        ValueError: a larger vocabulary that splits into no such groups (give ``num_groups``).
    """
    if codebook_size <= 1 << 16:
        return 1
    for g in range(2, 64):
        s = round(codebook_size ** (1.0 / g))
        if s <= _MAX_SUB_VOCAB and any(c >= 2 and c**g == codebook_size for c in (s - 1, s, s + 1)):
            return g
        if s < 2:
            break
    raise ValueError(
        f"a vocabulary of {codebook_size} ids splits into no equal sub-vocabularies of at most "
        f"{_MAX_SUB_VOCAB} values; give num_groups"
    )


class FactorizedPrior(TokenPrior):
    """Integer weights (every weight ``>= 1``) of sub-token 0, ``first`` ``(S,)``, and of sub-token ``k`` given
    sub-token ``k − 1``, ``conditional`` ``(g − 1, S, S)`` (row: the previous sub-token's value).

    Args:
        first: ``(S,)`` int64 weights (see the module docstring).
        conditional: ``(g − 1, S, S)`` int64 weights; ``(0, S, S)`` for ``g = 1``. ``S^g`` is the vocabulary.
        tokenizer_hash: hash of the tokenizer whose tokens they were fitted on.
        path: the file they came from (a hint stored in compressed files).
        num_tokens: tokens the weights were fitted on (informational).

    Raises:
        ValueError: tables of the wrong shape or type, or with a weight below 1.
    """

    kind = "factorized"

    def __init__(
        self,
        first: Tensor | np.ndarray,
        conditional: Tensor | np.ndarray,
        tokenizer_hash: str,
        path: str | None = None,
        num_tokens: int = 0,
    ) -> None:
        f, c = (np.asarray(t.numpy() if isinstance(t, Tensor) else t) for t in (first, conditional))
        s = f.shape[0] if f.ndim == 1 else 0
        ok = f.ndim == 1 and s >= 1 and c.ndim == 3 and c.shape[1:] == (s, s)
        if not ok or not all(np.issubdtype(t.dtype, np.integer) and (t.size == 0 or t.min() >= 1) for t in (f, c)):
            raise ValueError(
                f"factorized prior tables must be integer weights >= 1 of shapes (S,) and (g - 1, S, S), "
                f"got {f.dtype} {f.shape} and {c.dtype} {c.shape}"
            )
        self.first, self.conditional = f.astype(np.int64), c.astype(np.int64)
        self.sub_vocab, self.num_groups = s, 1 + c.shape[0]
        self.codebook_size = s**self.num_groups
        self.tokenizer_hash = tokenizer_hash
        self.hint = path
        self.num_tokens = int(num_tokens)

    @property
    def identity(self) -> str:
        digest = hashlib.sha256(f"factorized:v1:{self.num_groups}x{self.sub_vocab};".encode())
        for table in (self.first, self.conditional):
            digest.update(np.ascontiguousarray(table, dtype="<i8").tobytes())
        return digest.hexdigest()

    def _subs(self, ids: Tensor) -> np.ndarray:
        return split_tokens(ids.detach().cpu().long().flatten(1), self.sub_vocab, self.num_groups).numpy()

    def _parts(self, subs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(N, g)`` sub-tokens of one chunk → coding parts: sub-token 0 i.i.d., then one row of weights per token."""
        parts = [(subs[:, 0], self.first)]
        parts += [(subs[:, k], self.conditional[k - 1][subs[:, k - 1]]) for k in range(1, self.num_groups)]
        return parts

    def encode(self, ids: Tensor) -> list[bytes]:
        return [encode_symbols(self._parts(chunk)) for chunk in self._subs(ids)]

    def decode(self, payloads: Sequence[bytes], grid: tuple[int, int, int]) -> Tensor:
        n = int(np.prod(grid))
        out = []
        for payload in payloads:
            stream = RangeDecoderStream(payload)
            subs = [stream.decode(self.first, n)]
            for k in range(1, self.num_groups):
                subs.append(stream.decode(self.conditional[k - 1][subs[-1]]))
            out.append(merge_tokens(torch.from_numpy(np.stack(subs, axis=-1)), self.sub_vocab))
        return torch.stack(out).view(len(out), *grid) if out else torch.zeros(0, *grid, dtype=torch.long)

    def ideal_bits(self, ids: Tensor) -> list[float]:
        return [sum(ideal_bits(sym, w) for sym, w in self._parts(chunk)) for chunk in self._subs(ids)]

    # -- the file ------------------------------------------------------------------------------------

    def save(self, path: str | Path, sources: Sequence[str] = ()) -> Path:
        """Write the tables and the metadata (tokenizer hash, vocabulary, groups, token count, sources) as
        safetensors, atomically. Returns the path."""
        from safetensors.numpy import save_file

        meta = {
            "format": _FORMAT,
            "tokenizer_hash": self.tokenizer_hash,
            "codebook_size": str(self.codebook_size),
            "num_groups": str(self.num_groups),
            "sub_vocab": str(self.sub_vocab),
            "num_tokens": str(self.num_tokens),
            "sources": json.dumps(list(sources)),
        }
        tables = {"first": np.ascontiguousarray(self.first), "conditional": np.ascontiguousarray(self.conditional)}
        path = write_atomic(path, lambda tmp: save_file(tables, str(tmp), metadata=meta))
        self.hint = str(path)
        return path

    @classmethod
    def load(cls, path: str | Path, tokenizer_hash: str | None = None) -> FactorizedPrior:
        """Read a prior written by :meth:`save`.

        Args:
            path: the safetensors file.
            tokenizer_hash: when given, the hash the prior must have been fitted for.

        Raises:
            FileNotFoundError: no file (the message says which command fits one).
            ValueError: not a factorized prior file, or one fitted on another tokenizer's tokens (both hashes named).
        """
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"factorized prior {str(path)!r} not found; fit one with `lfq-kit fit-prior "
                "--tokenizer TOKENIZER.ckpt VIDEO ...` (writes TOKENIZER.prior.safetensors)"
            )
        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                tables = {name: f.get_tensor(name) for name in ("first", "conditional")}
        except Exception as err:  # safetensors raises its own error types for foreign files
            raise ValueError(f"{str(path)!r} is not a factorized prior file: {err}") from err
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{str(path)!r} is not a factorized prior file (format {meta.get('format')!r})")
        if tokenizer_hash is not None and meta["tokenizer_hash"] != tokenizer_hash:
            raise ValueError(
                f"the factorized prior {str(path)!r} was fitted on the tokens of tokenizer "
                f"{meta['tokenizer_hash'][:12]}, not of this tokenizer ({tokenizer_hash[:12]}); fit one "
                "for it with `lfq-kit fit-prior`"
            )
        return cls(
            tables["first"], tables["conditional"], meta["tokenizer_hash"], str(path), int(meta.get("num_tokens", 0))
        )


def _weights(p: np.ndarray) -> np.ndarray:
    return np.maximum(1, np.rint(p * 2.0**WEIGHT_BITS)).astype(np.int64)


def fit_factorized_prior(
    token_batches: Iterable[Tensor],
    codebook_size: int,
    tokenizer_hash: str,
    num_groups: int | None = None,
    alpha: float = 32.0,
) -> FactorizedPrior:
    """Count the sub-tokens (and pairs of consecutive sub-tokens) of ``token_batches`` (int tensors of ids, any
    shape) and return the fitted prior; see the module docstring for the formulas (``alpha``: the conditionals'
    pull toward the marginal).

    Raises:
        ValueError: no tokens, ids outside ``[0, codebook_size)``, a vocabulary that does not split into
            ``num_groups`` equal sub-vocabularies, or ``alpha <= 0``.
    """
    g = default_num_groups(codebook_size) if num_groups is None else int(num_groups)
    s = round(codebook_size ** (1.0 / g))
    s = next((c for c in (s - 1, s, s + 1) if c >= 1 and c**g == codebook_size), None)
    if s is None:
        raise ValueError(f"a vocabulary of {codebook_size} ids does not split into {g} equal sub-vocabularies")
    if alpha <= 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    counts = torch.zeros(g, s, dtype=torch.int64)
    pairs = torch.zeros(g - 1, s * s, dtype=torch.int64)
    for ids in token_batches:
        ids = ids.detach().cpu().long().reshape(-1)
        if ids.numel() == 0:
            continue
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= codebook_size:
            raise ValueError(f"token ids span [{lo}, {hi}], outside [0, {codebook_size})")
        subs = split_tokens(ids, s, g)  # (N, g)
        counts += torch.stack([torch.bincount(subs[:, k], minlength=s) for k in range(g)])
        for k in range(1, g):
            pairs[k - 1] += torch.bincount(subs[:, k - 1] * s + subs[:, k], minlength=s * s)
    total = int(counts[0].sum())
    if total == 0:
        raise ValueError("no tokens to fit the factorized prior on")
    marginal = (counts.numpy().astype(np.float64) + 0.5) / (total + 0.5 * s)  # (g, S)
    pair = pairs.numpy().astype(np.float64).reshape(g - 1, s, s)
    previous = counts.numpy()[:-1].astype(np.float64)[:, :, None]  # (g − 1, S, 1): count of the conditioning value
    conditional = (pair + alpha * marginal[1:, None, :]) / (previous + alpha)
    return FactorizedPrior(_weights(marginal[0]), _weights(conditional), tokenizer_hash, num_tokens=total)
