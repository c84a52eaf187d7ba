"""The masked LM's recipe settings (MAGVIT / MaskGIT, lfq_kit.models._mlm_recipe), each checked by value on a
hand-built example; old checkpoints load with the settings off; the weight-decay groups."""

import math

import lightning as L
import pytest
import torch
import torch.nn.functional as F

import lfq_kit.models.masked_lm as masked_lm
from lfq_kit.backbones.transformer import BidirectionalTransformer
from lfq_kit.models._maskgit import MaskedTokens
from lfq_kit.models._mlm_recipe import position_weights, reduce_loss
from lfq_kit.models.masked_lm import MaskedLM

NEW_SETTINGS = (
    "mask_weight",
    "refine_weight",
    "recons_weight",
    "loss_normalization",
    "mask_ratio_per",
    "input_norm",
    "head_transform",
)


def tiny_mlm(**kwargs) -> MaskedLM:
    torch.manual_seed(0)
    backbone = BidirectionalTransformer(dim=16, depth=1, num_heads=2, dropout=0.0, attn_dropout=0.0)
    return MaskedLM(
        backbone,
        grid=(1, 2, 2),
        codebook_size=16,
        num_groups=2,
        num_classes=2,
        class_dropout=0.0,
        warmup_steps=0,
        **kwargs,
    )


def test_position_weights_give_each_kind_its_weight():
    mask = torch.tensor([[True, False, False, True]])
    condition = torch.tensor([[True, True, False, False]])  # a masked condition position counts as masked
    assert position_weights(mask, condition, 2.0, 0.5, 0.125).tolist() == [[2.0, 0.5, 0.125, 2.0]]
    assert position_weights(mask, None).tolist() == [[1.0, 0.0, 0.0, 1.0]]  # the default: masked only


def test_token_and_sequence_normalization_by_value():
    loss = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    weights = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    assert math.isclose(float(reduce_loss(loss, weights, "token")), (1 + 4 + 5 + 6 + 7 + 8) / 6, rel_tol=1e-6)
    per_sequence = ((1 + 4) / 2 + (5 + 6 + 7 + 8) / 4) / 2
    assert math.isclose(float(reduce_loss(loss, weights, "sequence")), per_sequence, rel_tol=1e-6)
    with pytest.raises(ValueError, match="loss_normalization"):
        reduce_loss(loss, weights, "batch")


def _training_loss(model: MaskedLM, monkeypatch, mask: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """The training loss with a fixed mask (the masking is replaced, nothing else)."""
    monkeypatch.setattr(
        masked_lm, "cosine_mask", lambda ids_, mask_id, **kw: MaskedTokens(ids_.masked_fill(mask, mask_id), mask)
    )
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    return model.training_step({"indices": ids.view(2, 1, 2, 2), "label": torch.tensor([0, 1])}, 0)


IDS = torch.tensor([[3, 7, 12, 0], [15, 1, 9, 4]])
MASK = torch.tensor([[True, False, False, False], [True, True, True, False]])


def _per_position(model: MaskedLM, smoothing: float = 0.0) -> torch.Tensor:
    """Hand-computed summed sub-token cross-entropy per position (4 ids = 4 × 4: sub-tokens id % 4, id // 4)."""
    logits = model(IDS.masked_fill(MASK, model.mask_id), torch.tensor([0, 1])).float()  # (2, 4, 2, 4)
    logp = logits.log_softmax(-1)
    subs = torch.stack([IDS % 4, IDS // 4], -1)
    nll = -logp.gather(-1, subs[..., None]).squeeze(-1)
    return ((1 - smoothing) * nll + smoothing * -logp.mean(-1)).sum(-1)


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({}, lambda ce: ce[MASK].mean()),  # masked positions only, per token (today)
        ({"loss_normalization": "sequence"}, lambda ce: (ce[0, 0] + ce[1, :3].mean()) / 2),
        ({"recons_weight": 0.5}, lambda ce: (ce[MASK].sum() + 0.5 * ce[~MASK].sum()) / (4 + 0.5 * 4)),
        (
            {"recons_weight": 0.5, "loss_normalization": "sequence"},
            lambda ce: ((ce[0, 0] + 0.5 * ce[0, 1:].sum()) / 2.5 + (ce[1, :3].sum() + 0.5 * ce[1, 3]) / 3.5) / 2,
        ),
    ],
)
def test_each_loss_setting_changes_the_training_loss_by_value(settings, expected, monkeypatch):
    model = tiny_mlm(label_smoothing=0.0, **settings)
    loss = _training_loss(model, monkeypatch, MASK, IDS)
    assert torch.allclose(loss, expected(_per_position(model)), atol=1e-6)


def test_refine_weight_counts_the_given_condition_positions(monkeypatch):
    """Frame prediction: the condition latent frame of a conditioned example is never masked and weighs
    ``refine_weight``; the other visible positions ``recons_weight``."""
    model = tiny_mlm(label_smoothing=0.0, refine_weight=0.25, recons_weight=0.5)
    frame = torch.tensor([True, True, False, False])  # the condition positions (_maskable is replaced)
    monkeypatch.setattr(model, "_maskable", lambda ids: ~torch.stack([frame, torch.zeros(4, dtype=torch.bool)]))
    mask = torch.tensor([[False, False, True, False], [True, False, False, True]])
    loss = _training_loss(model, monkeypatch, mask, IDS)
    logits = model(IDS.masked_fill(mask, model.mask_id), torch.tensor([0, 1])).float()
    ce = model.tokens.cross_entropy(logits, IDS)
    weights = torch.tensor([[0.25, 0.25, 1.0, 0.5], [1.0, 0.5, 0.5, 1.0]])
    assert torch.allclose(loss, (ce * weights).sum() / weights.sum(), atol=1e-6)


def test_label_smoothing_value_is_the_one_of_the_loss(monkeypatch):
    for smoothing in (1e-4, 0.1):
        model = tiny_mlm(label_smoothing=smoothing)
        loss = _training_loss(model, monkeypatch, MASK, IDS)
        assert torch.allclose(loss, _per_position(model, smoothing)[MASK].mean(), atol=1e-6)


def test_one_mask_ratio_per_batch_masks_every_example_equally():
    ids = torch.randint(0, 16, (64, 1, 2, 2))
    counts = {}
    for per in ("example", "batch"):
        model = tiny_mlm(mask_ratio_per=per)
        model.log = lambda *a, **k: None
        seen = []
        model.forward = lambda inputs, labels, seen=seen: seen.append(inputs) or torch.zeros(*inputs.shape, 2, 4)
        torch.manual_seed(1)
        model.training_step({"indices": ids, "label": torch.zeros(64, dtype=torch.long)}, 0)
        counts[per] = (seen[0] == model.mask_id).sum(1)
    assert counts["batch"].unique().numel() == 1 and counts["example"].unique().numel() > 1


def test_input_norm_and_head_transform_are_maskgits_by_value():
    model = tiny_mlm(input_norm=True, head_transform=True).eval()
    with torch.no_grad():
        for p in model.parameters():  # LayerNorm starts as identity affine: make every weight count
            p.add_(0.1 * torch.randn_like(p))
    inputs, labels = IDS.masked_fill(MASK, model.mask_id), torch.tensor([0, 1])
    x = torch.cat([model.class_embedding(labels)[:, None], model.tokens.embed(inputs)], 1) + model.position_embedding
    norm = model.input_norm
    hidden = model.backbone(F.layer_norm(x, (16,), norm.weight, norm.bias))[:, 1:]
    head = model.head_transform
    h = F.layer_norm(F.gelu(hidden @ head.dense.weight.T + head.dense.bias), (16,), head.norm.weight, head.norm.bias)
    logits = (h @ model.tokens.tables.T).unflatten(-1, (2, 4)) + model.tokens.bias
    assert torch.allclose(model(inputs, labels), logits, atol=1e-5)
    plain = tiny_mlm().eval()
    assert plain.input_norm is None and plain.head_transform is None
    assert not any(k.startswith(("input_norm", "head_transform")) for k in plain.state_dict())


def _checkpoint(model: MaskedLM, path, drop_settings: bool) -> None:
    hparams = {k: v for k, v in model.hparams.items() if not (drop_settings and k in NEW_SETTINGS)}
    torch.save(
        {"state_dict": model.state_dict(), "hyper_parameters": hparams, "pytorch-lightning_version": L.__version__},
        path,
    )


def test_a_checkpoint_from_before_the_settings_loads_with_them_off_and_is_refused_with_them_on(tmp_path):
    old = tiny_mlm()
    path = tmp_path / "old.ckpt"
    _checkpoint(old, path, drop_settings=True)  # what a checkpoint written before the settings holds
    backbone = BidirectionalTransformer(dim=16, depth=1, num_heads=2, dropout=0.0, attn_dropout=0.0)
    loaded = MaskedLM.load_from_checkpoint(path, backbone=backbone)
    assert loaded.input_norm is None and loaded.head_transform is None
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), loaded.state_dict().values()))
    for setting in ("input_norm", "head_transform"):
        with pytest.raises(ValueError, match=f"no {setting} weights: it was trained with {setting}=False"):
            MaskedLM.load_from_checkpoint(path, backbone=backbone, **{setting: True})
    new = tiny_mlm(input_norm=True, head_transform=True)
    _checkpoint(new, tmp_path / "new.ckpt", drop_settings=False)
    again = MaskedLM.load_from_checkpoint(tmp_path / "new.ckpt", backbone=backbone)
    assert torch.equal(again.head_transform.dense.weight, new.head_transform.dense.weight)


def test_weight_decay_groups_hold_exactly_the_documented_parameters():
    model = tiny_mlm(input_norm=True, head_transform=True)
    opt = model.configure_optimizers()["optimizer"]
    name_of = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = ([name_of[id(p)] for p in g["params"]] for g in opt.param_groups)
    assert decay == [
        "backbone.blocks.0.attn.qkv.weight",
        "backbone.blocks.0.attn.proj.weight",
        "backbone.blocks.0.mlp.fc1.weight",
        "backbone.blocks.0.mlp.fc2.weight",
        "head_transform.dense.weight",
    ]
    assert "tokens.bias" in no_decay and model.tokens.bias.ndim == 2  # the tied heads' (g, S) bias
    assert set(no_decay) == {n for n, _ in model.named_parameters()} - set(decay)
    assert opt.param_groups[0]["weight_decay"] == 0.045 and opt.param_groups[1]["weight_decay"] == 0.0
    assert any(p is model.tokens.bias for p in opt.param_groups[1]["params"])
