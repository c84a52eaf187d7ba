"""The settings that run VideoMAE's weights (opt-in; the defaults keep lfq-kit's behaviour): LayerNorm epsilons, no
final norm with ``fc_norm`` pooling, the head's ``init_scale``, the input normalization folded into the tubelet
embedding; the normalized pixel target of a constant tubelet; which parameters get weight decay; and reading
pretrained backbones without running pickled code."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lfq_kit.backbones import VideoViT
from lfq_kit.backbones.masked_decoder import MaskedDecoder
from lfq_kit.backbones.tubelet_embedding import IMAGENET_MEAN, IMAGENET_STD, TubeletEmbedding, fold_input_normalization
from lfq_kit.data.transforms import to_signed_unit
from lfq_kit.models import VideoClassifier
from lfq_kit.models._pixel_targets import normalized_tubelets
from lfq_kit.models._pretrained import load_backbone_weights
from lfq_kit.models.videomae import no_weight_decay

TINY = {"clip_size": (4, 16, 16), "tubelet_size": 2, "patch_size": 8, "dim": 32, "depth": 2, "num_heads": 2}


def _norms(module: nn.Module) -> list[nn.LayerNorm]:
    return [m for m in module.modules() if isinstance(m, nn.LayerNorm)]


def test_layer_norm_epsilons_default_to_pytorchs_and_follow_the_settings():
    assert {m.eps for m in _norms(VideoViT(**TINY))} == {1e-5}
    vit = VideoViT(**TINY, norm_eps=1e-6)
    assert len(_norms(vit)) == 2 * 2 + 1 and {m.eps for m in _norms(vit)} == {1e-6}
    decoder = MaskedDecoder(8, 32, dim=16, depth=2, num_heads=2, norm_eps=1e-12, final_norm_eps=1e-5)
    assert [m.eps for m in _norms(decoder)] == [1e-12] * 4 + [1e-5]
    assert {m.eps for m in _norms(MaskedDecoder(8, 32, dim=16, depth=1, num_heads=2))} == {1e-5}


def test_fc_norm_pooling_is_videomaes_and_the_default_is_unchanged():
    torch.manual_seed(0)
    video = torch.rand(2, 3, 4, 16, 16) * 2 - 1
    plain = VideoClassifier(VideoViT(**TINY), num_classes=3)
    assert "fc_norm.weight" not in plain.state_dict() and isinstance(plain.backbone.norm, nn.LayerNorm)
    with torch.no_grad():
        assert torch.equal(plain(video), plain.head(plain.backbone(video).mean(1)))
    model = VideoClassifier(VideoViT(**TINY, final_norm=False), num_classes=3, pooling="fc_norm", fc_norm_eps=1e-6)
    assert "backbone.norm.weight" not in model.state_dict() and model.fc_norm.eps == 1e-6
    nn.init.normal_(model.fc_norm.weight)
    model.eval()
    with torch.no_grad():
        tokens = model.backbone(video)
        expected = F.linear(
            F.layer_norm(tokens.mean(1), (32,), model.fc_norm.weight, model.fc_norm.bias, 1e-6),
            model.head.weight,
            model.head.bias,
        )
        assert torch.allclose(model(video), expected, atol=1e-6)
    with pytest.raises(ValueError, match="pooling must be 'mean' or 'fc_norm'"):
        VideoClassifier(VideoViT(**TINY), num_classes=3, pooling="max")


def test_init_scale_scales_the_heads_initial_weights():
    torch.manual_seed(3)
    one = VideoClassifier(VideoViT(**TINY), num_classes=3).head.weight
    torch.manual_seed(3)
    small = VideoClassifier(VideoViT(**TINY), num_classes=3, init_scale=0.001).head.weight
    assert torch.equal(small, one * 0.001) and float(one.std()) > 0.01


def test_the_folded_normalization_gives_the_normalized_inputs_output():
    torch.manual_seed(0)
    embed = TubeletEmbedding(3, 16, 2, 4).double()
    nn.init.normal_(embed.proj.bias)
    clip = torch.rand(2, 3, 4, 8, 8, dtype=torch.float64) * 2 - 1
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1, 1)
    with torch.no_grad():
        reference = embed(((clip + 1) / 2 - mean) / std)
        embed.proj.weight[:], embed.proj.bias[:] = fold_input_normalization(embed.proj.weight, embed.proj.bias)
        assert torch.allclose(embed(clip), reference, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="need 3 means and 3 positive stds"):
        fold_input_normalization(embed.proj.weight, embed.proj.bias, std=(0.2, 0.0, 0.2))


def test_a_constant_tubelet_gives_a_zero_target_at_every_uint8_level():
    levels = torch.arange(256, dtype=torch.uint8)  # one tubelet (2 x 16 x 16) per level, 3 equal channels
    frames = levels.view(256, 1, 1, 1, 1).expand(256, 3, 2, 16, 16)
    video = to_signed_unit(frames)
    targets = normalized_tubelets(video, 2, 16)
    assert targets.shape == (256, 1, 2 * 16 * 16 * 3) and targets.dtype == torch.float32
    assert torch.equal(targets, torch.zeros_like(targets))
    ramp = torch.linspace(-1, 1, 2 * 16 * 16).view(1, 1, 2, 16, 16).expand(1, 3, 2, 16, 16)
    target = normalized_tubelets(ramp, 2, 16).view(-1, 3)[:, 0].double()  # (t, p, p, C) layout
    assert abs(float(target.mean())) < 1e-6 and abs(float(target.std()) - 1) < 1e-5  # unbiased std 1 (+ 1e-6)


def test_weight_decay_spares_biases_norms_positions_and_mask_tokens_of_any_shape():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)
            self.fc_norm = nn.LayerNorm((2, 2))  # a 2-D norm weight
            self.block = nn.Module()
            self.block.bias = nn.Parameter(torch.zeros(2, 2))  # a 2-D bias
            self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
            self.mask_token = nn.Parameter(torch.zeros(1, 1, 4))
            self.normalizer = nn.Linear(4, 4)  # not a norm layer despite its name

    odd = Odd()
    decayed = sorted(n for n, p in odd.named_parameters() if not no_weight_decay(n, p))
    assert decayed == ["normalizer.weight", "proj.weight"]
    model = VideoClassifier(VideoViT(**TINY, final_norm=False), num_classes=3, pooling="fc_norm")
    groups = model.configure_optimizers()["optimizer"].param_groups
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    expected = {n for n, p in model.named_parameters() if n.endswith("weight") and p.ndim >= 2}
    assert decayed == expected and all(
        n.endswith(("qkv.weight", "proj.weight", "fc1.weight", "fc2.weight", "head.weight")) for n in decayed
    )


class Opaque:  # a pickled object that a weights-only unpickler will not build
    pass


def test_pretrained_weights_are_read_without_running_pickled_code(tmp_path):
    vit = VideoViT(**TINY)
    state = {f"encoder.{k}": v for k, v in vit.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": {"lr": 1e-3, "betas": [0.9, 0.95]}}, tmp_path / "ok.ckpt")
    assert load_backbone_weights(VideoViT(**TINY), tmp_path / "ok.ckpt") == sorted(vit.state_dict())
    torch.save({"state_dict": state, "hyper_parameters": {"callback": Opaque()}}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match=r"bad\.ckpt' holds pickled objects besides tensors and plain values.*Opaque"):
        load_backbone_weights(VideoViT(**TINY), tmp_path / "bad.ckpt")
    data = (tmp_path / "ok.ckpt").read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.ckpt' is not a readable PyTorch checkpoint"):
        load_backbone_weights(VideoViT(**TINY), tmp_path / "cut.ckpt")
