"""configs/pretrained/open_magvit2_*.yaml: each parses, is exactly the architecture the converter reads from that
family's weights (TencentARC/SEED-Voken's configs: ch 128, 4 residual blocks, the family's ch_mult and bits), and
instantiates into a tokenizer of the family's token grid and vocabulary."""

from pathlib import Path

import pytest

from lfq_kit.models import VideoTokenizer
from lfq_kit.pretrained.lightning_config import instantiate_with_config
from lfq_kit.pretrained.open_magvit2 import checked_config_node
from lfq_kit.pretrained.open_magvit2_layout import OpenMagvit2Architecture

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "pretrained"

# name → (video, ch_mult, bits, clip (T, H, W), token grid)
FAMILIES = {
    "open_magvit2_imagenet_128": (False, (1, 2, 2, 4), 18, (1, 128, 128), (1, 16, 16)),
    "open_magvit2_imagenet_256": (False, (1, 1, 2, 2, 4), 18, (1, 256, 256), (1, 16, 16)),
    "open_magvit2_pretrain_256_2p14": (False, (1, 1, 2, 2, 4), 14, (1, 256, 256), (1, 16, 16)),
    "open_magvit2_pretrain_256_2p18": (False, (1, 1, 2, 2, 4), 18, (1, 256, 256), (1, 16, 16)),
    "open_magvit2_ucf101_128": (True, (1, 2, 2, 4), 18, (17, 128, 128), (5, 16, 16)),
}


def test_every_open_magvit2_config_is_listed():
    assert sorted(p.stem for p in CONFIGS.glob("open_magvit2_*.yaml")) == sorted(FAMILIES)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_the_config_is_the_architecture_of_the_weights_and_instantiates(name):
    video, mult, bits, clip, grid = FAMILIES[name]
    arch = OpenMagvit2Architecture(video, 128, mult, 4, bits)
    node = checked_config_node(CONFIGS / f"{name}.yaml", arch, f"{name}.ckpt")  # raises on any difference
    model = instantiate_with_config(node, VideoTokenizer)
    assert model.quantizer.codebook_size == 2**bits
    assert model.encoder.latent_shape(*clip) == grid
    assert model.decoder.output_shape(*grid) == clip
    assert model.discriminator is None and model.ema is None
    assert model.encoder.clip_wide_norm if video else type(model.encoder).__name__ == "Image2dEncoder"
