"""Converted VideoMAE weights reproduce the reference code's outputs (transformers ``models/videomae`` on tiny
configs, tests/fixtures/interop/videomae_hf_*): the fixtures' state dicts go through ``convert_videomae`` (what
``lfq-kit convert videomae`` runs) as a transformers folder and as an MCG-NJU ``.pth`` of the same weights, the
written checkpoint is loaded back, and every output agrees within 1e-4 relative (float32).

The fixtures' inputs are ImageNet-normalized pixels; lfq-kit takes the ``[−1, 1]`` clip of the same pixels and the
conversion folds the normalization into the tubelet embedding. The MCG-NJU layout carries no configuration: its
LayerNorm eps is MCG-NJU's 1e-6 (the fixtures ran transformers' 1e-12 / 1e-5, a difference far below 1e-4) and the
heads and clip size are passed as they would be for a non-standard width.
"""

import pytest
import torch
import torch.nn.functional as F
from tiny_videomae import CLASSIFICATION, PRETRAINING, fixture, lfq_clip, write_mcg_pth, write_transformers_folder

from lfq_kit.models import VideoClassifier, VideoMAEPretraining
from lfq_kit.pretrained.videomae import convert_videomae

RTOL = 1e-4


def _close(ours: torch.Tensor, reference: torch.Tensor) -> None:
    assert ours.shape == reference.shape
    scale = reference.abs().max()
    assert float((ours - reference).abs().max()) <= RTOL * float(scale), float((ours - reference).abs().max() / scale)


def _convert(tmp_path, name: str, layout: str, **mcg_args):
    if layout == "transformers":
        source = write_transformers_folder(tmp_path / "hf", name)
        result = convert_videomae(source, tmp_path / "out.ckpt")
    else:
        source = write_mcg_pth(tmp_path / "mcg.pth", name)
        result = convert_videomae(source, tmp_path / "out.ckpt", **mcg_args)
    assert result.output == tmp_path / "out.ckpt" and result.output.is_file()
    return result


@pytest.mark.parametrize("layout", ["transformers", "mcg-nju"])
def test_pretraining_outputs_equal_the_reference(tmp_path, layout):
    tensors, _ = fixture(PRETRAINING)
    result = _convert(tmp_path, PRETRAINING, layout, num_heads=4, decoder_heads=2, clip_size=(16, 32, 32))
    blocks = 4  # 2 encoder + 2 decoder; MCG-NJU holds each block's q, k, v weights as one qkv tensor
    merged = 2 * blocks if layout == "mcg-nju" else 0
    assert result.tensors == len([k for k in tensors if k.startswith("state_dict.")]) - merged
    model = VideoMAEPretraining.load_from_checkpoint(result.output).eval()
    eps = 1e-12 if layout == "transformers" else 1e-6
    assert model.encoder.blocks[0].norm1.eps == eps and model.decoder.norm.eps == (1e-5 if eps == 1e-12 else 1e-6)
    clip = lfq_clip(tensors["input"])
    mask = tensors["bool_masked_pos"]
    visible = torch.stack([(~row).nonzero().flatten() for row in mask])  # ascending token order, as transformers
    masked = torch.stack([row.nonzero().flatten() for row in mask])
    with torch.no_grad():
        features = model.encoder(clip, visible)
        _close(features, tensors["encoder_visible"])
        _close(model.encoder(clip), tensors["encoder_full"])
        predicted = model.head(model.decoder(features, visible, masked))
        _close(predicted, tensors["logits"])
        loss = F.mse_loss(predicted, model.targets(clip, masked))  # normalized pixel targets of the masked tubelets
    _close(loss.reshape(1), tensors["loss"])


@pytest.mark.parametrize("layout", ["transformers", "mcg-nju"])
def test_classifier_logits_equal_the_reference(tmp_path, layout):
    tensors, _ = fixture(CLASSIFICATION)
    result = _convert(tmp_path, CLASSIFICATION, layout, num_heads=4, clip_size=(4, 32, 32))
    model = VideoClassifier.load_from_checkpoint(result.output).eval()
    assert model.hparams.pooling == "fc_norm" and isinstance(model.backbone.norm, torch.nn.Identity)
    clip = lfq_clip(tensors["input"])
    with torch.no_grad():
        _close(model.backbone(clip), tensors["sequence_output"])
        _close(model(clip), tensors["logits"])
    assert "logits (1, 5)" in result.check


def test_the_mcg_nju_layout_infers_only_what_it_says(tmp_path):
    """Width 64 is no released width: without the heads the conversion is refused, naming the argument."""
    from lfq_kit.pretrained.checkpoint_files import LayoutError

    source = write_mcg_pth(tmp_path / "mcg.pth", CLASSIFICATION)
    with pytest.raises(LayoutError, match=r"encoder width 64 .*pass the number of heads \(num_heads\)"):
        convert_videomae(source, tmp_path / "out.ckpt")
    assert not (tmp_path / "out.ckpt").exists()
    result = convert_videomae(source, tmp_path / "out.ckpt", num_heads=4, clip_size=(4, 32, 32))
    assert result.source_format.endswith(
        "4 heads, clip 4 x 32 x 32, tubelet 2 x 8 x 8, 5 classes; not in the file: LayerNorm eps 1e-6 (MCG-NJU's code)"
    )
