"""Tiny VideoMAE files for the conversion tests and the documented chain (docs/pretrained.md, "VideoMAE"), made from
the reference fixtures in tests/fixtures/interop (transformers' VideoMAE on tiny configs; their JSON says how):

- a transformers folder (``config.json`` + ``model.safetensors``) holding a fixture's state dict as it is;
- the same weights in MCG-NJU's ``.pth`` layout (``{"model": state_dict}``, ``modeling_pretrain.py`` /
  ``modeling_finetune.py`` names: one ``qkv`` weight with ``q_bias`` / ``v_bias``);
- the lfq-kit clip ``(B, C, T, H, W)`` in ``[−1, 1]`` whose VideoMAE input is the fixture's normalized input.

For tests/test_docs.py's chains: :func:`build_tiny_videomae_base` (a stand-in for the ``videomae-base`` folder),
:func:`build_tiny_kinetics` (a miniature Kinetics-400 tree) and :data:`CHAIN_OVERRIDES` (the sizes that make the
Kinetics config fit the stand-in; the documented commands run ViT-B on 16 × 224 × 224 clips).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from lfq_kit.backbones.tubelet_embedding import IMAGENET_MEAN, IMAGENET_STD

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "interop"
PRETRAINING = "videomae_hf_pretraining_tiny"
CLASSIFICATION = "videomae_hf_classification_tiny"

CHAIN_OVERRIDES = [
    "--model.init_args.backbone.init_args.clip_size=[16, 32, 32]",
    "--model.init_args.backbone.init_args.patch_size=8",
    "--model.init_args.backbone.init_args.dim=64",
    "--model.init_args.backbone.init_args.depth=2",
    "--model.init_args.backbone.init_args.num_heads=4",
    "--data.init_args.resolution=32",
    "--data.init_args.batch_size=2",
    "--data.init_args.num_workers=0",
    "--trainer.precision=32",
    "--trainer.accelerator=cpu",
    "--trainer.devices=1",
]
"""Arguments that fit ``configs/kinetics_finetune_videomae.yaml`` to :func:`build_tiny_videomae_base`'s model
(ViT 2 × 64, 4 heads, patch 8, 16 × 32 × 32 clips) for its ``fit`` and ``test`` commands in a chain."""


def fixture(name: str) -> tuple[dict[str, Tensor], dict]:
    """A fixture's tensors and its JSON."""
    return load_file(FIXTURES / f"{name}.safetensors"), json.loads((FIXTURES / f"{name}.json").read_text())


def hf_state(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The transformers state dict of a fixture (on-disk names)."""
    return {k[len("state_dict.") :]: v for k, v in tensors.items() if k.startswith("state_dict.")}


def write_transformers_folder(
    dest: Path,
    name: str,
    state: dict[str, Tensor] | None = None,
    config: dict | None = None,
    weights: str = "model.safetensors",
) -> Path:
    """Write fixture ``name`` (or ``state`` / ``config`` instead of its own) as a transformers folder."""
    tensors, meta = fixture(name)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps(config if config is not None else meta["config"], indent=1))
    state = hf_state(tensors) if state is None else state
    if weights.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in state.items()}, dest / weights)
    else:
        torch.save(state, dest / weights)
    return dest


_HF_BLOCK = {
    "layernorm_before": "norm1",
    "attention.output.dense": "attn.proj",
    "layernorm_after": "norm2",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
}


def _mcg_block(prefix: str, block: dict[str, Tensor]) -> dict[str, Tensor]:
    att = "attention.attention."
    out = {
        f"{prefix}attn.qkv.weight": torch.cat([block[f"{att}{n}.weight"] for n in ("query", "key", "value")]),
        f"{prefix}attn.q_bias": block[f"{att}q_bias"],
        f"{prefix}attn.v_bias": block[f"{att}v_bias"],
    }
    for name, value in block.items():
        module, _, leaf = name.rpartition(".")
        if module in _HF_BLOCK:
            out[f"{prefix}{_HF_BLOCK[module]}.{leaf}"] = value
    return out


def to_mcg(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A transformers VideoMAE state dict in MCG-NJU's layout (pretraining or fine-tuned, as the source)."""
    pretraining = "encoder_to_decoder.weight" in state
    enc = "encoder." if pretraining else ""
    blocks: dict[str, dict[str, Tensor]] = {}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        match = re.fullmatch(r"(videomae\.encoder\.layer|decoder\.decoder_layers)\.(\d+)\.(.+)", key)
        if match:
            owner = f"{enc}blocks." if match.group(1).startswith("videomae") else "decoder.blocks."
            blocks.setdefault(f"{owner}{match.group(2)}.", {})[match.group(3)] = value
            continue
        key = key.replace("videomae.embeddings.patch_embeddings.projection.", f"{enc}patch_embed.proj.")
        key = key.replace("videomae.layernorm.", "encoder.norm.").replace("classifier.", "head.")
        out[key] = value
    for prefix, block in blocks.items():
        out.update(_mcg_block(prefix, block))
    return out


def write_mcg_pth(dest: Path, name: str, container: str = "model") -> Path:
    """Fixture ``name`` as an MCG-NJU ``.pth`` (``{container: state_dict}``)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save({container: to_mcg(hf_state(fixture(name)[0])), "epoch": 1599}, dest)
    return dest


def _block(prefix: str, dim: int, gen: torch.Generator) -> dict[str, Tensor]:
    def rand(*shape: int) -> Tensor:
        return torch.randn(shape, generator=gen) * 0.02

    def norm(name: str) -> dict[str, Tensor]:
        return {f"{prefix}{name}.weight": 1 + 10 * rand(dim), f"{prefix}{name}.bias": rand(dim)}

    return {
        **norm("norm1"),
        **norm("norm2"),
        f"{prefix}attn.qkv.weight": rand(3 * dim, dim),
        f"{prefix}attn.q_bias": rand(dim),
        f"{prefix}attn.v_bias": rand(dim),
        f"{prefix}attn.proj.weight": rand(dim, dim),
        f"{prefix}attn.proj.bias": rand(dim),
        f"{prefix}mlp.fc1.weight": rand(4 * dim, dim),
        f"{prefix}mlp.fc1.bias": rand(4 * dim),
        f"{prefix}mlp.fc2.weight": rand(dim, 4 * dim),
        f"{prefix}mlp.fc2.bias": rand(dim),
    }


def random_mcg_state(pretraining: bool, num_classes: int = 3, seed: int = 0) -> dict[str, Tensor]:
    """Random weights in MCG-NJU's layout at a released width (ViT-S's 384, decoder 192, so the heads are inferred)
    with one block each, tubelet 2 × 16 × 16."""
    gen = torch.Generator().manual_seed(seed)
    dim, decoder = 384, 192
    enc = "encoder." if pretraining else ""
    state = {
        f"{enc}patch_embed.proj.weight": torch.randn((dim, 3, 2, 16, 16), generator=gen) * 0.02,
        f"{enc}patch_embed.proj.bias": torch.zeros(dim),
        **_block(f"{enc}blocks.0.", dim, gen),
    }
    if pretraining:
        state |= {
            "encoder.norm.weight": torch.ones(dim),
            "encoder.norm.bias": torch.zeros(dim),
            "encoder_to_decoder.weight": torch.randn((decoder, dim), generator=gen) * 0.02,
            "mask_token": torch.randn((1, 1, decoder), generator=gen) * 0.02,
            **_block("decoder.blocks.0.", decoder, gen),
            "decoder.norm.weight": torch.ones(decoder),
            "decoder.norm.bias": torch.zeros(decoder),
            "decoder.head.weight": torch.randn((2 * 16 * 16 * 3, decoder), generator=gen) * 0.02,
            "decoder.head.bias": torch.zeros(2 * 16 * 16 * 3),
        }
    else:
        state |= {
            "fc_norm.weight": torch.ones(dim),
            "fc_norm.bias": torch.zeros(dim),
            "head.weight": torch.randn((num_classes, dim), generator=gen) * 0.02,
            "head.bias": torch.zeros(num_classes),
        }
    return state


def lfq_clip(hf_input: Tensor) -> Tensor:
    """The lfq-kit clip ``(B, C, T, H, W)`` in ``[−1, 1]`` whose ImageNet-normalized pixels are ``hf_input``
    ``(B, T, C, H, W)`` (computed in float64, returned in float32)."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 1, 3, 1, 1)
    return (2 * (hf_input.double() * std + mean) - 1).permute(0, 2, 1, 3, 4).float()


def build_tiny_videomae_base(dest: Path) -> None:
    """A stand-in for a transformers ``videomae-base`` folder (a tiny ``VideoMAEForPreTraining``) at ``dest``."""
    write_transformers_folder(dest, PRETRAINING)


def build_tiny_kinetics(dest: Path) -> None:
    """A miniature Kinetics-400 tree at ``dest`` (3 classes, frames of the bundled ``bikes.mp4``)."""
    import dataset_trees
    from video_fixtures import decode_all, sample_clip

    frames = decode_all(sample_clip("bikes.mp4"))[:48]
    dataset_trees.build_kinetics(dest, np.ascontiguousarray(frames))
