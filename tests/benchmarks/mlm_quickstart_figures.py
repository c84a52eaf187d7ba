"""The quickstart masked LM's held-out figures beside context-free baselines on the same tokens (docs/generation.md).

Run after the quickstart chain (`lfq-kit fit --config configs/quickstart.yaml`, `lfq-kit predict --config
configs/quickstart_tokens.yaml`, `lfq-kit fit --config configs/quickstart_mlm.yaml`)::

    python tests/benchmarks/mlm_quickstart_figures.py

Prints, on two held-out sets of token shards: ``holdout`` (in-distribution: the last 20 % of each training video's
frames, never trained on; the true class) and ``val`` (carphone_pristine.mp4, another video; the null class):

- the masked LM's bits per masked token at several mask ratios (a fixed random mask per clip, ``--repeats`` masks);
- baselines on the same tokens, fitted to the training shards: the uniform code (log2 K = 18 bits), the product
  of the sub-token marginals ``p(A) p(B)`` (the best context-free factorized model, add-1/2 smoothing) and the
  joint unigram ``p(id)`` (add-1/2 over all K ids);
- what the tokens look like: distinct ids per clip and how often a token changes between adjacent latent frames;
- frame prediction in token space: the accuracy of the predicted tokens of latent frames 2-4 (5 condition frames →
  2 latent frames) against the tokenizer's tokens of the real frames (MaskGIT decoding, 12 steps, argmax), beside
  copying the last condition latent frame's tokens.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
from torch import Tensor

from lfq_kit.data.tokens import read_token_split
from lfq_kit.models import MaskedLM
from lfq_kit.models._maskgit import cosine_mask


def load_split(folder: Path) -> tuple[Tensor, Tensor]:
    """``(ids (N, T', H', W') int64, labels (N,) int64)`` of one split folder of token shards."""
    _, tensors, _ = read_token_split(folder)
    return tensors["indices"], tensors["labels"]


@torch.no_grad()
def bits_per_masked_token(model: MaskedLM, ids: Tensor, labels: Tensor, ratio: float, repeats: int = 8) -> float:
    """Mean masked-token cross-entropy (bits) over ``repeats`` fixed random masks at ``ratio`` (seeds 0, 1, ...)."""
    flat = ids.flatten(1)
    bits, count = 0.0, 0
    for r in range(repeats):
        masked = cosine_mask(flat, model.mask_id, torch.Generator().manual_seed(r), ratio=ratio)
        nats = -model.tokens.log_prob(model(masked.inputs, labels), flat)
        bits += float(nats[masked.mask].sum()) / math.log(2)
        count += int(masked.mask.sum())
    return bits / count


def baselines(train: Tensor, held: Tensor, codebook_size: int, sub_vocab: int) -> dict[str, float]:
    """Held-out bits per token under context-free models of the training tokens (add-1/2 smoothing)."""
    train, held = train.flatten(), held.flatten()
    joint = (torch.bincount(train, minlength=codebook_size).double() + 0.5) / (train.numel() + 0.5 * codebook_size)
    bits = {"uniform": math.log2(codebook_size), "joint unigram": float(-joint[held].log2().mean())}
    product = torch.zeros(held.shape, dtype=torch.float64)
    for shift in (0, 1):  # sub-token A = id mod S, B = id div S (LSB first)
        sub_train, sub_held = (train // sub_vocab**shift) % sub_vocab, (held // sub_vocab**shift) % sub_vocab
        p = (torch.bincount(sub_train, minlength=sub_vocab).double() + 0.5) / (train.numel() + 0.5 * sub_vocab)
        product += -p[sub_held].log2()
    bits["product of sub-token marginals"] = float(product.mean())
    return bits


def token_statistics(ids: Tensor) -> str:
    """Distinct ids per clip (of ``T'·H'·W'``) and the share of positions whose id differs from the previous
    latent frame's (latent frames 1→2 onward: frame 0 encodes one frame alone)."""
    distinct = torch.tensor([float(c.unique().numel()) for c in ids]).mean()
    changed = (ids[:, 2:] != ids[:, 1:-1]).float().mean()
    return (
        f"{distinct:.0f} distinct ids per clip of {ids[0].numel()}; {100 * changed:.0f} % of tokens change "
        "between adjacent latent frames"
    )


def bit_accuracy(predicted: Tensor, real: Tensor, bits: int = 18) -> float:
    """Share of the ``bits`` bits of the ids that agree."""
    differ = predicted ^ real
    return 1.0 - float(sum(((differ >> b) & 1).sum() for b in range(bits))) / (bits * real.numel())


@torch.no_grad()
def frame_prediction_accuracy(model: MaskedLM, ids: Tensor, labels: Tensor) -> tuple[float, float, float, float]:
    """``(masked LM, copy-last)`` accuracy of the predicted latent frames' tokens against the real ones, then the
    same for their bits."""
    tc = model.condition_latent_frames
    labels = None if bool((labels == model.null_class).all()) else labels  # generate takes None for the null class
    generator = torch.Generator().manual_seed(0)
    predicted = model.generate(labels, steps=12, temperature=0.0, condition=ids[:, :tc], generator=generator)
    real = ids[:, tc:]
    copy = ids[:, tc - 1 : tc].expand_as(real)
    bits = int(math.log2(model.codebook_size))
    return (
        float((predicted[:, tc:] == real).float().mean()),
        float((copy == real).float().mean()),
        bit_accuracy(predicted[:, tc:], real, bits),
        bit_accuracy(copy, real, bits),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlm", default="runs/quickstart_mlm/checkpoints/last.ckpt")
    parser.add_argument("--tokens", default="runs/quickstart_tokens")
    parser.add_argument("--ratios", type=float, nargs="*", default=[0.1, 0.5, 0.9, 1.0])
    parser.add_argument("--repeats", type=int, default=8)
    args = parser.parse_args()
    model = MaskedLM.load_from_checkpoint(args.mlm, map_location="cpu").eval()
    root = Path(args.tokens)
    train, _ = load_split(root / "train")
    print(f"training tokens: {train.numel()} ({train.shape[0]} clips); {token_statistics(train)}")
    for split, title, conditional in (("holdout", "in-distribution holdout", True), ("val", "carphone", False)):
        ids, labels = load_split(root / split)
        if not conditional:
            labels = torch.full_like(labels, model.null_class)
        print(f"\n{title} ({split}/): {ids.numel()} tokens, {ids.shape[0]} clips; {token_statistics(ids)}")
        print("| model | bits per masked token |\n| --- | --- |")
        for ratio in args.ratios:
            bits = bits_per_masked_token(model, ids, labels, ratio, args.repeats)
            print(f"| masked LM, {100 * ratio:.0f} % masked | {bits:.2f} |")
        for name, bits in baselines(train, ids, model.codebook_size, model.tokens.sub_vocab).items():
            print(f"| {name} | {bits:.2f} |")
        if model.condition_latent_frames:
            mlm, copy, mlm_bits, copy_bits = frame_prediction_accuracy(model, ids, labels)
            print(
                f"frame prediction, token accuracy of latent frames {model.condition_latent_frames}-"
                f"{model.grid[0] - 1}: masked LM {100 * mlm:.1f} %, copy the last condition latent frame "
                f"{100 * copy:.1f} %; bit accuracy {100 * mlm_bits:.1f} % and {100 * copy_bits:.1f} %"
            )


if __name__ == "__main__":
    main()
