"""One prepared GPU check (issue 13), at most ~5 minutes: training-step throughput (clips/s) and peak memory
(``torch.cuda.max_memory_allocated``) of

- the tokenizer of configs/ucf101.yaml (the paper's UCF-101 setting: 17 x 128 x 128 clips, GAN and perceptual
  loss on, batch 8 per GPU as in the paper), bf16-mixed, eager and with the model's ``compile`` option;
- the masked LM at the B preset (TransformerB over 5 x 16 x 16 tokens of 2^18 ids, two 512-way groups, batch 8);
- VideoMAE pretraining (VideoViTB, 17 x 128 x 128, pixel targets, mask ratio 0.75, batch 32) and the video
  classifier (VideoViTB, 400 classes, mixup/CutMix on, batch 16).

    python tests/benchmarks/gpu_check.py            # prints a table; record it in docs/benchmarks.md

Each item runs under a wall-clock budget (seconds in ``BUDGETS``): warm-up steps (allocator, cuDNN autotuning,
compilation) are not timed, then steps are timed until the budget is spent. Without CUDA it prints
"no CUDA device: nothing measured" and exits 0. Random data and random weights (no network: the perceptual
ResNet-50 is randomly initialized and read from a temporary file).
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch

ROOT = Path(__file__).resolve().parents[2]
WARMUP_STEPS = 3
BUDGETS = {"tokenizer": 50, "tokenizer+compile": 110, "masked_lm_B": 35, "videomae_B": 35, "classifier_B": 35}
"""Seconds per item, compilation and warm-up included (about 4.5 minutes with start-up)."""


class Result(NamedTuple):
    name: str
    batch: int
    steps: int
    clips_per_s: float
    peak_gib: float
    note: str = ""


class _Random(torch.utils.data.Dataset):
    """``make(i)`` → one sample; long enough for any budget."""

    def __init__(self, make: Callable[[int], dict[str, Any]]) -> None:
        self.make = make

    def __len__(self) -> int:
        return 1_000_000

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.make(i)


def _clip(size=(17, 128, 128)) -> Callable[[int], dict[str, Any]]:
    def make(i: int) -> dict[str, Any]:
        g = torch.Generator().manual_seed(i)
        return {"video": torch.rand(3, *size, generator=g) * 2 - 1, "label": i % 101, "index": i}

    return make


def _tokens(i: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(i)
    return {"indices": torch.randint(0, 2**18, (5, 16, 16), generator=g), "label": i % 101, "index": i}


class _Timer:
    """A Lightning callback: times batches after the warm-up (CUDA synchronized) and stops at the budget."""

    def __new__(cls, budget: float):
        import lightning as L

        class Timer(L.Callback):
            def __init__(self) -> None:
                self.start = time.perf_counter()
                self.timed_from: float | None = None
                self.batches = 0

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
                torch.cuda.synchronize()
                now = time.perf_counter()
                if batch_idx + 1 == WARMUP_STEPS:
                    torch.cuda.reset_peak_memory_stats()
                    self.timed_from = now
                elif self.timed_from is not None:
                    self.batches += 1
                if now - self.start > budget:
                    trainer.should_stop = True

            def rate(self, batch: int) -> float:
                if not self.batches:
                    return float("nan")
                return self.batches * batch / (time.perf_counter() - self.timed_from)

        return Timer()


def _run(name: str, model, make: Callable[[int], dict[str, Any]], batch: int) -> Result:
    import lightning as L

    timer = _Timer(BUDGETS[name])
    loader = torch.utils.data.DataLoader(_Random(make), batch_size=batch, num_workers=4, pin_memory=True)
    trainer = L.Trainer(
        accelerator="gpu",
        devices=1,
        precision="bf16-mixed",
        max_steps=10**6,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    torch.cuda.reset_peak_memory_stats()
    trainer.fit(model, train_dataloaders=loader)
    note = "" if timer.batches else f"budget {BUDGETS[name]} s spent before a timed step"
    return Result(name, batch, timer.batches, timer.rate(batch), torch.cuda.max_memory_allocated() / 2**30, note)


def _paper_tokenizer(compile: bool, weights: Path):
    """configs/ucf101.yaml's model, perceptual ResNet-50 weights from ``weights``."""
    import lightning as L
    import yaml
    from jsonargparse import ArgumentParser

    from lfq_kit.cli import import_components

    import_components()
    node = yaml.safe_load((ROOT / "configs/ucf101.yaml").read_text())["model"]
    node["init_args"]["perceptual_loss"]["init_args"]["weights"] = str(weights)
    node["init_args"]["disc_start"] = 0  # the GAN from the first step: the full step is what a run pays
    if compile:
        node["init_args"]["compile"] = True
    parser = ArgumentParser()
    parser.add_subclass_arguments(L.LightningModule, "model")
    return parser.instantiate(parser.parse_object({"model": node})).model


def _items(weights: Path):
    from lfq_kit.backbones import TransformerB, VideoViTB
    from lfq_kit.models import MaskedLM, VideoClassifier, VideoMAEPretraining

    vit = dict(clip_size=(17, 128, 128), tubelet_size=4, patch_size=8, first_frame_patch=True)
    yield "tokenizer", lambda: _paper_tokenizer(False, weights), _clip(), 8
    yield "tokenizer+compile", lambda: _paper_tokenizer(True, weights), _clip(), 8
    yield (
        "masked_lm_B",
        lambda: MaskedLM(
            TransformerB(), grid=(5, 16, 16), codebook_size=2**18, num_groups=2, num_classes=101, warmup_steps=0
        ),
        _tokens,
        8,
    )
    yield "videomae_B", lambda: VideoMAEPretraining(VideoViTB(**vit), mask_ratio=0.75, warmup_steps=0), _clip(), 32
    yield (
        "classifier_B",
        lambda: VideoClassifier(VideoViTB(**vit, drop_path=0.1), num_classes=400, warmup_steps=0),
        _clip(),
        16,
    )


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: nothing measured")
        return 0
    import timm
    from safetensors.torch import save_file

    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "resnet50.safetensors"
        save_file(timm.create_model("resnet50", pretrained=False).state_dict(), str(weights))
        for name, build, make, batch in _items(weights):
            try:
                results.append(_run(name, build(), make, batch))
            except Exception as error:  # one item failing (OOM, missing option) must not hide the others
                results.append(
                    Result(name, batch, 0, float("nan"), float("nan"), f"{type(error).__name__}: {error}"[:120])
                )
            gc.collect()
            torch.cuda.empty_cache()
    print(f"\n{torch.cuda.get_device_name()}, torch {torch.__version__}, bf16-mixed, 1 GPU")
    print(f"{'item':<18} {'batch':>5} {'timed steps':>11} {'clips/s':>9} {'peak GiB':>9}  note")
    for r in results:
        print(f"{r.name:<18} {r.batch:>5} {r.steps:>11} {r.clips_per_s:>9.2f} {r.peak_gib:>9.2f}  {r.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
