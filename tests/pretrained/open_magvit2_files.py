"""Open-MAGVIT2 checkpoint files for the tests: the reference fixtures' tensors (tests/fixtures/interop, made by
SEED-Voken's own modules; provenance in their JSON) laid out as a released Lightning ``.ckpt`` is, and tiny stand-ins
for the released files that the chains of docs/pretrained.md convert (tests/test_docs.py ``CHAIN_INPUTS``)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor

from lfq_kit.models import VideoTokenizer
from lfq_kit.pretrained.lightning_config import instantiate_with_config, resolve_model_config
from lfq_kit.pretrained.open_magvit2_layout import OpenMagvit2Architecture, layout_of

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "interop"


def fixture(kind: str) -> dict[str, Tensor]:
    """Every tensor of ``open_magvit2_{kind}_tiny.safetensors`` (kind: ``image`` or ``video``)."""
    return load_file(str(FIXTURES / f"open_magvit2_{kind}_tiny.safetensors"))


def fixture_state(kind: str) -> dict[str, Tensor]:
    """The fixture's reference model weights under their checkpoint names (``encoder.*``, ``decoder.*``), float16."""
    return {k.removeprefix("state_dict."): v for k, v in fixture(kind).items() if k.startswith("state_dict.")}


def ema_name(key: str) -> str:
    """The name their ``LitEma`` gives the EMA copy of parameter ``key``."""
    return "model_ema." + key.replace(".", "")


def ckpt_payload(
    state: dict[str, Tensor], ema: dict[str, Tensor] | None = None, hyper_parameters: object = None
) -> dict:
    """A Lightning checkpoint as SEED-Voken's ``VQModel`` writes it: the tokenizer, loss tensors (discriminator and
    LPIPS stand-ins) and, given ``ema``, their ``model_ema.*`` copies with ``decay`` and ``num_updates``."""
    loss = {
        "loss.discriminator.blocks.0.conv1.weight": torch.randn(4, 3, 3, 3),
        "loss.perceptual_loss.lin0.model.1.weight": torch.rand(1, 64, 1, 1),
    }
    tensors = {**state, **loss}
    if ema is not None:
        tensors.update({ema_name(k): v for k, v in {**ema, **loss}.items()})
        tensors.update({"model_ema.decay": torch.tensor(0.999), "model_ema.num_updates": torch.tensor(-1)})
    if hyper_parameters is None:
        hyper_parameters = {"ddconfig": {"ch": 32, "double_z": False}, "n_embed": 2**18, "use_ema": ema is not None}
    return {
        "epoch": 3,
        "global_step": 1200,
        "pytorch-lightning_version": "2.2.1",
        "state_dict": tensors,
        "hyper_parameters": hyper_parameters,
    }


def write_ckpt(
    path: Path, state: dict[str, Tensor], ema: dict[str, Tensor] | None = None, hyper_parameters: object = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt_payload(state, ema, hyper_parameters), path)
    return path


def random_state(arch: OpenMagvit2Architecture, seed: int = 0) -> dict[str, Tensor]:
    """Weights of ``arch`` under their names with their shapes (smooth random values, small convs)."""
    model = instantiate_with_config(resolve_model_config(arch.model_config()), VideoTokenizer)
    shapes = model.state_dict()
    g = torch.Generator().manual_seed(seed)
    state = {}
    for theirs, ours in layout_of(arch).keys.items():
        shape = shapes[ours].shape
        if theirs.endswith(".weight") and len(shape) > 1:  # convs and linear maps: outputs of unit variance
            state[theirs] = torch.randn(shape, generator=g) / math.prod(shape[1:]) ** 0.5
        else:  # biases and GroupNorm affines
            affine_scale = theirs.endswith(".weight")
            state[theirs] = torch.randn(shape, generator=g) * 0.1 + (1.0 if affine_scale else 0.0)
    return state


# Tiny stand-ins for the released files, built where the chains of docs/pretrained.md expect the user's downloads.
IMAGENET_256_STAND_IN = OpenMagvit2Architecture(False, 32, (1, 1, 1, 1, 1), 1, 18)  # 16x, like the 256 px model
UCF101_STAND_IN = OpenMagvit2Architecture(True, 32, (1, 2, 2, 2), 1, 18)  # 4x in time, 8x in space, like UCF-101's


def imagenet_256_stand_in(path: Path) -> Path:
    """A tiny stand-in for ``imagenet_256_L.ckpt`` (16× spatial, 2^18 codes), with an EMA copy."""
    state = random_state(IMAGENET_256_STAND_IN)
    return write_ckpt(path, state, ema=state)


def ucf101_stand_in(path: Path) -> Path:
    """A tiny stand-in for ``video_128_262144.ckpt`` (17 frames → 5, 8× spatial, 2^18 codes), with an EMA copy."""
    state = random_state(UCF101_STAND_IN, seed=1)
    return write_ckpt(path, state, ema=state)
