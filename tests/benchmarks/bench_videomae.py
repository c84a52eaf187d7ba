"""VideoMAE pretraining and fine-tuning speed (docs/action_recognition.md).

1. The pretraining step (forward, backward, AdamW) with the visible-only encoder against one that encodes every
   token and then keeps the visible ones, at mask ratio 0.9 (VideoMAE's claim: ~10x fewer encoder tokens).
2. Side by side with Hugging Face transformers' ``VideoMAEForPreTraining`` at a matched configuration: ViT-S
   (12 x 384, 6 heads), 16 x 112 x 112 clips, tubelet 2 x 16 x 16 (8 x 7 x 7 = 392 tokens), decoder 4 x 384
   (6 heads), normalized pixel targets, randomly initialized (nothing downloaded); step time and peak memory
   (CUDA: max allocated; CPU: peak RSS growth of this process).
3. Fine-tuning throughput (clips per second) of VideoClassifier on the same ViT-S.

transformers is a bench extra (``pip install transformers``), never imported by src/ or tests/; without it part 2
is skipped.

    OMP_NUM_THREADS=2 python tests/benchmarks/bench_videomae.py [--device cuda] [--batch 4] [--steps 5]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from rss import peak_rss, reset_peak_rss  # noqa: E402

from lfq_kit.backbones import VideoViTS  # noqa: E402
from lfq_kit.models import VideoClassifier, VideoMAEPretraining  # noqa: E402
from lfq_kit.models.tube_masking import tube_mask  # noqa: E402

CLIP, TUBELET, PATCH, RATIO = (16, 112, 112), 2, 16, 0.9


def ours(device: str) -> VideoMAEPretraining:
    encoder = VideoViTS(clip_size=CLIP, tubelet_size=TUBELET, patch_size=PATCH)
    return VideoMAEPretraining(encoder, target="pixels", mask_ratio=RATIO, decoder_dim=384, decoder_depth=4,
                               decoder_heads=6).to(device)  # fmt: skip


def encode_all_loss(model: VideoMAEPretraining, video: torch.Tensor) -> torch.Tensor:
    """The same loss, but the encoder runs on every token and the visible ones are taken afterwards."""
    m = tube_mask(video.shape[0], model.grid, RATIO, video.device)
    full = model.encoder(video)
    visible = full.gather(1, m.visible[..., None].expand(-1, -1, full.shape[-1]))
    predicted = model.head(model.decoder(visible, m.visible, m.masked))
    return torch.nn.functional.mse_loss(predicted, model.targets(video, m.masked))


def hf_model(device: str):
    from transformers import VideoMAEConfig, VideoMAEForPreTraining

    config = VideoMAEConfig(image_size=CLIP[1], num_frames=CLIP[0], tubelet_size=TUBELET, patch_size=PATCH,
                            hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536,
                            decoder_hidden_size=384, decoder_num_hidden_layers=4, decoder_num_attention_heads=6,
                            decoder_intermediate_size=1536, norm_pix_loss=True, use_mean_pooling=False)  # fmt: skip
    return VideoMAEForPreTraining(config).to(device)


def timed(step, device: str, steps: int) -> tuple[float, float]:
    """Seconds per step (median of ``steps`` after 2 warm-up steps) and peak memory in MiB."""
    for _ in range(2):
        step()
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = reset_peak_rss()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() if device == "cuda" else peak_rss()) - base
    return sorted(times)[len(times) // 2], peak / 2**20


def train_step(loss_fn, params):
    opt = torch.optim.AdamW(params, lr=1e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn().backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    dev, b = args.device, args.batch
    torch.manual_seed(0)
    video = torch.rand(b, 3, *CLIP, device=dev) * 2 - 1
    rows = []
    model = ours(dev)
    rows.append(("lfq-kit, visible-only encoder", *timed(train_step(lambda: model.loss(video), model.parameters()), dev, args.steps)))
    rows.append(("lfq-kit, encoder on every token", *timed(train_step(lambda: encode_all_loss(model, video), model.parameters()), dev, args.steps)))
    del model
    try:
        hf = hf_model(dev)
    except ImportError:
        print("transformers not installed: skipping VideoMAEForPreTraining (pip install transformers)")
    else:
        pixels = video.transpose(1, 2)  # HF takes (B, T, C, H, W)
        grid = (CLIP[0] // TUBELET, CLIP[1] // PATCH, CLIP[2] // PATCH)

        def hf_loss():
            mask = tube_mask(b, grid, RATIO, dev).mask  # the same tube masks
            return hf(pixel_values=pixels, bool_masked_pos=mask).loss

        rows.append(("transformers VideoMAEForPreTraining", *timed(train_step(hf_loss, hf.parameters()), dev, args.steps)))
        del hf
    print(f"pretraining step, ViT-S {CLIP[0]}x{CLIP[1]}x{CLIP[2]}, tubelet {TUBELET}x{PATCH}x{PATCH}, ratio {RATIO}, "
          f"batch {b}, {dev}")  # fmt: skip
    print("| variant | s / step | peak MiB |\n| --- | --- | --- |")
    for name, sec, mib in rows:
        print(f"| {name} | {sec:.3f} | {mib:.0f} |")
    print(f"visible-only speed-up over encoding every token: {rows[1][1] / rows[0][1]:.1f}x")

    classifier = VideoClassifier(VideoViTS(clip_size=CLIP, tubelet_size=TUBELET, patch_size=PATCH, drop_path=0.1),
                                 num_classes=400, lr=1e-4).to(dev)  # fmt: skip
    opt = classifier.configure_optimizers()["optimizer"]
    labels = torch.randint(400, (b,), device=dev)

    def ft_step():
        opt.zero_grad(set_to_none=True)
        mixed = classifier.mixup(video, labels)
        torch.nn.functional.cross_entropy(classifier(mixed.video), mixed.targets).backward()
        opt.step()

    sec, mib = timed(ft_step, dev, args.steps)
    print(f"fine-tuning: {b / sec:.1f} clips/s ({sec:.3f} s per batch of {b}, peak {mib:.0f} MiB)")


if __name__ == "__main__":
    main()
