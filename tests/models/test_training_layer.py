"""The training layer the four LightningModules share (lfq_kit.models._training): one weight-decay rule, old
optimizer layouts that still resume, and mixins that compose in any order."""

import itertools
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from random_tokens import RandomTokens
from torch import nn

from lfq_kit.backbones import VideoViT
from lfq_kit.backbones.transformer import TransformerTiny
from lfq_kit.models import VideoClassifier
from lfq_kit.models._nonfinite import NonFiniteGuard, SkipNonFiniteSteps
from lfq_kit.models._step_seed import StepSeeded
from lfq_kit.models._token_consumer import TokenConsumer
from lfq_kit.models._training import (
    build_optimizer,
    decay_steps,
    no_weight_decay_names,
    regroup_optimizer_state,
    weight_decay_groups,
)
from lfq_kit.models.masked_lm import MaskedLM


class _Odd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.fc_norm = nn.LayerNorm((2, 2))  # a 2-D norm weight
        self.group = nn.GroupNorm(1, 4)
        self.table = nn.Embedding(5, 4)
        self.bias2d = nn.Module()
        self.bias2d.bias = nn.Parameter(torch.zeros(2, 2))  # a 2-D bias
        self.cls_pos = nn.Parameter(torch.zeros(1, 3, 4))  # declared below
        self.inner = nn.Module()
        self.inner.no_weight_decay = lambda: {"query*"}  # a submodule's own declaration, a pattern
        self.inner.query_table = nn.Parameter(torch.zeros(3, 4))
        self.normalizer = nn.Linear(4, 4)  # not a norm layer despite its name

    def no_weight_decay(self) -> set[str]:
        return {"cls_pos"}


def test_one_weight_decay_rule_for_biases_norms_embeddings_and_declared_tables():
    odd = _Odd()
    decayed = sorted(set(n for n, _ in odd.named_parameters()) - no_weight_decay_names(odd))
    assert decayed == ["normalizer.weight", "proj.weight"]
    groups = weight_decay_groups(odd)
    names = {id(p): n for n, p in odd.named_parameters()}
    assert [names[id(p)] for p in groups[0]["params"]] == ["proj.weight", "normalizer.weight"]
    assert "weight_decay" not in groups[0]  # the optimizer's own
    assert groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 10
    opt = build_optimizer(lambda params: torch.optim.AdamW(params, lr=0.1, weight_decay=0.3), odd)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.3, 0.0]


def test_an_optimizer_without_weight_decay_keeps_one_group_and_lr_scales_reach_the_groups():
    odd = _Odd()
    opt = build_optimizer(lambda params: torch.optim.Adam(params, lr=0.1), odd)
    assert len(opt.param_groups) == 1 and len(opt.param_groups[0]["params"]) == 12
    groups = [{"params": [odd.proj.weight], "lr_scale": 0.5}, {"params": [odd.proj.bias], "weight_decay": 0.0}]
    opt = build_optimizer(lambda params: torch.optim.AdamW(params, lr=0.1, weight_decay=0.3), odd, groups)
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.1]


def test_the_decay_steps_default_counts_optimizer_steps_per_batch():
    trainer = SimpleNamespace(max_steps=100)
    assert decay_steps(7, trainer) == 7
    assert decay_steps(None, trainer) == 100 and decay_steps(None, trainer, steps_per_batch=2) == 50
    assert decay_steps(None, SimpleNamespace(max_steps=-1)) is None and decay_steps(None, None) is None


def _mlm() -> MaskedLM:
    torch.manual_seed(0)
    return MaskedLM(TransformerTiny(), grid=(2, 2, 4), codebook_size=2**18, warmup_steps=1)


def _fit(model, tmp_path, max_steps, ckpt_path=None) -> L.Trainer:
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_steps=max_steps,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, RandomTokens(count=8, batch_size=4), ckpt_path=ckpt_path)
    return trainer


def test_a_masked_lm_checkpoint_with_the_old_weight_decay_groups_resumes_with_each_parameters_moments(tmp_path):
    trainer = _fit(_mlm(), tmp_path, max_steps=2)
    path = tmp_path / "new.ckpt"
    trainer.save_checkpoint(path)
    ckpt = torch.load(path, weights_only=False)
    model = _mlm()
    names = {id(p): n for n, p in model.named_parameters()}
    new = [[names[id(p)] for p in g["params"]] for g in weight_decay_groups(model)]
    assert "tokens.bias" in new[1]  # 2-D, but a bias: no decay (the old rule decayed it)
    old = [new[0] + ["tokens.bias"], [n for n in new[1] if n != "tokens.bias"]]
    old = [[n for n, _ in model.named_parameters() if n in group] for group in old]  # parameter order
    ckpt["optimizer_states"][0] = regroup_optimizer_state(ckpt["optimizer_states"][0], new, old)
    assert [len(g["params"]) for g in ckpt["optimizer_states"][0]["param_groups"]] == [len(g) for g in old]
    torch.save(ckpt, tmp_path / "old.ckpt")

    resumed = _mlm()
    seen = {}

    class Capture(L.Callback):
        def on_train_start(self, trainer, module):
            opt = trainer.optimizers[0]
            seen.update({names_of[id(p)]: opt.state[p]["exp_avg"].clone() for p in module.parameters()})

    names_of = {id(p): n for n, p in resumed.named_parameters()}
    t = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_steps=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        callbacks=[Capture()],
    )
    t.fit(resumed, RandomTokens(count=8, batch_size=4), ckpt_path=tmp_path / "old.ckpt")
    original, first = trainer.optimizers[0], {id(p): n for n, p in trainer.lightning_module.named_parameters()}
    expected = {first[id(p)]: original.state[p]["exp_avg"] for g in original.param_groups for p in g["params"]}
    assert sorted(seen) == sorted(expected)
    for name, moment in expected.items():
        assert torch.equal(seen[name], moment), name
    assert t.optimizers[0].param_groups[1]["weight_decay"] == 0.0


# -- mixins compose in any order --------------------------------------------------------------------------------


def _module(order: tuple[type, ...], tokenizer_hash: str) -> L.LightningModule:
    class Module(*order, L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.frozen_tokenizer = SimpleNamespace(path="tok.ckpt", hash=tokenizer_hash)
            self.nonfinite_guard = NonFiniteGuard(3)

    return Module()


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations((StepSeeded, TokenConsumer, SkipNonFiniteSteps))),
    ids=lambda o: "-".join(c.__name__ for c in o),
)
def test_the_mixins_save_and_load_their_checkpoint_state_in_any_order(order):
    module = _module(order, "a" * 64)
    module.nonfinite_guard.skipped, module.nonfinite_guard.in_a_row = 5, [2]
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["tokenizer"] == {"path": "tok.ckpt", "hash": "a" * 64}
    assert checkpoint["nonfinite"] == {"skipped": 5, "in_a_row": [2]}
    restored = _module(order, "a" * 64)
    restored.on_load_checkpoint(checkpoint)
    assert restored.nonfinite_guard.state_dict() == {"skipped": 5, "in_a_row": [2]}
    with pytest.raises(ValueError, match="hash aaaaaaaaaaaa"):
        _module(order, "b" * 64).on_load_checkpoint(checkpoint)


def test_a_given_optimizer_gets_the_layer_scales_and_the_weight_decay_rule():
    vit = VideoViT(clip_size=(4, 16, 16), tubelet_size=2, patch_size=8, dim=16, depth=2, num_heads=2)
    model = VideoClassifier(
        vit, num_classes=3, layer_decay=0.5, optimizer=lambda params: torch.optim.SGD(params, lr=0.1, weight_decay=0.01)
    )
    opt = model.configure_optimizers()["optimizer"]
    assert isinstance(opt, torch.optim.SGD)
    names = {id(p): n for n, p in model.named_parameters()}
    by_name = {names[id(p)]: g for g in opt.param_groups for p in g["params"]}
    # initial_lr: the schedule's peak (LambdaLR has already applied the first warm-up factor to lr)
    assert by_name["head.weight"]["initial_lr"] == pytest.approx(0.1) and by_name["head.weight"]["weight_decay"] == 0.01
    assert by_name["backbone.blocks.0.attn.qkv.weight"]["initial_lr"] == pytest.approx(0.1 * 0.5**2)
    assert by_name["backbone.blocks.0.attn.qkv.bias"]["weight_decay"] == 0.0
    assert by_name["backbone.patch_embed.proj.weight"]["initial_lr"] == pytest.approx(0.1 * 0.5**3)
