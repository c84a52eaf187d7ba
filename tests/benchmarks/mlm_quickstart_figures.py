"""The quickstart masked LM's held-out figures beside two baselines on the same tokens (docs/generation.md).

Run after the quickstart pair (`lfq-kit fit --config configs/quickstart.yaml`, then `configs/quickstart_mlm.yaml`):
``python tests/benchmarks/mlm_quickstart_figures.py``.

Prints, in bits per token on the tokens of the held-out clips (carphone_pristine.mp4, the 4 validation clips):
the masked LM's masked-token cross-entropy at several mask ratios (the null class, a fixed random mask per clip,
averaged over ``--repeats`` masks), the uniform code (log2 K = 18 bits), the plug-in unigram entropy of the
training tokens (``--train-batches`` batches of random training clips; optimistic, since it is measured on the
tokens it is fitted to), and the held-out cross-entropy under that unigram (add-1/2 smoothing over all K ids).
"""

from __future__ import annotations

import argparse
import math

import torch
import yaml

from lfq_kit.data import SampleClipsDataModule
from lfq_kit.models import MaskedLM
from lfq_kit.models._maskgit import cosine_mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlm", default="runs/quickstart_mlm/checkpoints/last.ckpt")
    parser.add_argument("--config", default="configs/quickstart_mlm.yaml")
    parser.add_argument("--ratios", type=float, nargs="*", default=[0.1, 0.5, 0.75, 0.9, 1.0])
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--train-batches", type=int, default=50)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = MaskedLM.load_from_checkpoint(args.mlm, map_location="cpu").eval()
    tok = model.frozen_tokenizer
    data = SampleClipsDataModule(**yaml.safe_load(open(args.config))["data"]["init_args"])
    data.setup("fit")
    held_out = torch.cat([tok.encode(b["video"]).flatten(1) for b in data.val_dataloader()])
    train = torch.cat([tok.encode(b["video"]).flatten() for _, b in zip(range(args.train_batches), data.train_dataloader())])
    k = tok.codebook_size
    print(f"held-out tokens: {held_out.numel()} ({held_out.shape[0]} clips); training tokens: {train.numel()}")
    print("| model | bits per token |\n| --- | --- |")
    labels = torch.full((held_out.shape[0],), model.null_class)
    with torch.no_grad():
        for ratio in args.ratios:
            bits, count = 0.0, 0
            for r in range(args.repeats):
                masked = cosine_mask(held_out, model.mask_id, torch.Generator().manual_seed(r), ratio=ratio)
                nats = -model.tokens.log_prob(model(masked.inputs, labels), held_out)
                bits += float(nats[masked.mask].sum()) / math.log(2)
                count += int(masked.mask.sum())
            print(f"| masked LM, {100 * ratio:.0f} % masked | {bits / count:.2f} |")
    counts = torch.bincount(train, minlength=k).double()
    p = counts / counts.sum()
    unigram = float(-(p[p > 0] * p[p > 0].log2()).sum())
    smoothed = (counts + 0.5) / (counts.sum() + 0.5 * k)
    cross = float(-smoothed[held_out.flatten()].log2().mean())
    print(f"| uniform code | {math.log2(k):.2f} |")
    print(f"| unigram entropy of the training tokens (plug-in) | {unigram:.2f} |")
    print(f"| held-out tokens under the training unigram (add-1/2) | {cross:.2f} |")
    print(f"distinct ids: training {int((counts > 0).sum())}, held-out {held_out.unique().numel()}")


if __name__ == "__main__":
    main()
