"""VideoMAE pretraining and fine-tuning speed and memory (docs/action_recognition.md, docs/benchmarks.md).

1. The pretraining step (forward, backward, AdamW) with the visible-only encoder against one that encodes every
   token and then keeps the visible ones, at mask ratio 0.9 (VideoMAE's claim: ~10x fewer encoder tokens).
2. Side by side with Hugging Face transformers' ``VideoMAEForPreTraining`` at a matched configuration: VideoMAE's
   ViT-S (12 x 384, 6 heads; decoder 4 x 192, 3 heads, as in its ``pretrain_videomae_small_patch16_224``),
   16 x 112 x 112 clips, tubelet 2 x 16 x 16 (8 x 7 x 7 = 392 tokens), normalized pixel targets, the same tube
   masks, randomly initialized (nothing downloaded).
3. Fine-tuning throughput (clips per second) of VideoClassifier on the same ViT-S (400-way head).

Each variant runs in a fresh subprocess, so its peak memory is its own: CUDA, ``max_memory_allocated`` growth;
CPU, the growth of the peak RSS (``VmHWM``, reset with ``clear_refs``) from the built model and batch to the end
of the warm-up and timed steps (gradients, AdamW state and activations; the allocator's reuse after the first
step would hide it otherwise). Time: the median of ``--steps`` steps after 2 warm-up steps, the fastest of
``--rounds`` runs (variants interleaved: on a shared machine the least disturbed run is the closest to the truth).

transformers is a bench extra (``pip install transformers``), never imported by src/ or tests/; without it part 2
is skipped.

    OMP_NUM_THREADS=1 python tests/benchmarks/bench_videomae.py [--device cuda] [--batch 4] [--steps 5] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from rss import peak_rss, reset_peak_rss  # noqa: E402

from lfq_kit.backbones import VideoViTS  # noqa: E402
from lfq_kit.models import VideoClassifier, VideoMAEPretraining  # noqa: E402
from lfq_kit.models._tube_masking import tube_mask  # noqa: E402

CLIP, TUBELET, PATCH, RATIO = (16, 112, 112), 2, 16, 0.9
GRID = (CLIP[0] // TUBELET, CLIP[1] // PATCH, CLIP[2] // PATCH)
VARIANTS = {
    "visible": "lfq-kit, visible-only encoder",
    "all": "lfq-kit, encoder on every token",
    "hf": "transformers VideoMAEForPreTraining",
    "finetune": "lfq-kit VideoClassifier fine-tuning (400 classes)",
}


def ours(device: str) -> VideoMAEPretraining:
    """ViT-S with the default decoder for its width (VideoMAE's 4 x 192, 3 heads)."""
    encoder = VideoViTS(clip_size=CLIP, tubelet_size=TUBELET, patch_size=PATCH)
    model = VideoMAEPretraining(encoder, target="pixels", mask_ratio=RATIO).to(device)
    assert (model.decoder.dim, len(model.decoder.blocks)) == (192, 4)
    return model


def encode_all_loss(model: VideoMAEPretraining, video: torch.Tensor) -> torch.Tensor:
    """The same loss, but the encoder runs on every token and the visible ones are taken afterwards."""
    m = tube_mask(video.shape[0], model.grid, RATIO, video.device)
    full = model.encoder(video)
    visible = full.gather(1, m.visible[..., None].expand(-1, -1, full.shape[-1]))
    predicted = model.head(model.decoder(visible, m.visible, m.masked))
    return torch.nn.functional.mse_loss(predicted, model.targets(video, m.masked))


def hf_model(device: str):
    from transformers import VideoMAEConfig, VideoMAEForPreTraining

    config = VideoMAEConfig(
        image_size=CLIP[1],
        num_frames=CLIP[0],
        tubelet_size=TUBELET,
        patch_size=PATCH,
        hidden_size=384,
        num_hidden_layers=12,
        num_attention_heads=6,
        intermediate_size=1536,
        decoder_hidden_size=192,
        decoder_num_hidden_layers=4,
        decoder_num_attention_heads=3,
        decoder_intermediate_size=768,
        norm_pix_loss=True,
        use_mean_pooling=False,
    )
    return VideoMAEForPreTraining(config).to(device)


def train_step(loss_fn: Callable[[], torch.Tensor], params) -> Callable[[], None]:
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()

    return step


def build(variant: str, device: str, batch: int) -> Callable[[], None]:
    """The step function of ``variant`` (model and batch built, nothing run yet)."""
    torch.manual_seed(0)
    video = torch.rand(batch, 3, *CLIP, device=device) * 2 - 1
    if variant in ("visible", "all"):
        model = ours(device)
        loss = (lambda: model.loss(video)) if variant == "visible" else (lambda: encode_all_loss(model, video))
        return train_step(loss, model.parameters())
    if variant == "hf":
        hf = hf_model(device)
        pixels = video.transpose(1, 2)  # HF takes (B, T, C, H, W)

        def hf_loss() -> torch.Tensor:
            mask = tube_mask(batch, GRID, RATIO, device).mask  # the same tube masks
            return hf(pixel_values=pixels, bool_masked_pos=mask).loss

        return train_step(hf_loss, hf.parameters())
    classifier = VideoClassifier(
        VideoViTS(clip_size=CLIP, tubelet_size=TUBELET, patch_size=PATCH, drop_path=0.1), num_classes=400, lr=1e-4
    ).to(device)
    opt = classifier.configure_optimizers()["optimizer"]
    labels = torch.randint(400, (batch,), device=device)

    def ft_step() -> None:
        opt.zero_grad(set_to_none=True)
        mixed = classifier.mixup(video, labels)
        torch.nn.functional.cross_entropy(classifier(mixed.video), mixed.targets).backward()
        opt.step()

    return ft_step


def measure(variant: str, device: str, batch: int, steps: int) -> dict:
    """Seconds per step (median of ``steps`` after 2 warm-up steps) and peak memory growth in MiB."""
    step = build(variant, device, batch)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = reset_peak_rss()
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda" else peak_rss()) - base
    return {"variant": variant, "s_per_step": sorted(times)[len(times) // 2], "peak_mib": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="fresh-process runs per variant; the fastest is kept")
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="run one variant here (used internally)")
    args = parser.parse_args()
    if args.variant is not None:
        try:
            print(json.dumps(measure(args.variant, args.device, args.batch, args.steps)))
        except ImportError as err:
            print(json.dumps({"variant": args.variant, "skipped": str(err)}))
        return
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):  # variants interleaved, so a busy spell of a shared machine hits them alike
        for variant in VARIANTS:
            cmd = [
                sys.executable,
                __file__,
                "--variant",
                variant,
                "--device",
                args.device,
                "--batch",
                str(args.batch),
                "--steps",
                str(args.steps),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    rows = {}
    for variant, results in runs.items():  # fastest round (the least disturbed), the largest peak
        rows[variant] = (
            results[0]
            if "skipped" in results[0]
            else {"s_per_step": min(r["s_per_step"] for r in results), "peak_mib": max(r["peak_mib"] for r in results)}
        )
    b = args.batch
    print(
        f"pretraining step, ViT-S {CLIP[0]}x{CLIP[1]}x{CLIP[2]}, tubelet {TUBELET}x{PATCH}x{PATCH}, ratio {RATIO}, "
        f"decoder 4 x 192, batch {b}, {args.device}, fastest of {args.rounds} fresh-process runs per row"
    )
    print("| variant | s / step | peak memory growth (MiB) |\n| --- | --- | --- |")
    for variant, name in VARIANTS.items():
        r = rows[variant]
        if "skipped" in r:
            print(f"| {name} | skipped: {r['skipped']} (pip install transformers) | |")
        elif variant != "finetune":
            print(f"| {name} | {r['s_per_step']:.3f} | {r['peak_mib']:.0f} |")
    print(
        "visible-only speed-up over encoding every token: "
        f"{rows['all']['s_per_step'] / rows['visible']['s_per_step']:.1f}x"
    )
    ft = rows["finetune"]
    print(
        f"fine-tuning: {b / ft['s_per_step']:.1f} clips/s ({ft['s_per_step']:.3f} s per batch of {b}, "
        f"peak memory growth {ft['peak_mib']:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
