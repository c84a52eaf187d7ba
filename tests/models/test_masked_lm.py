"""The masked LM: masking and loss (invariant 16), generation (invariant 17), guidance, memorisation, the frozen
tokenizer and its checks."""

import math

import lightning as L
import pytest
import torch

from lfq_kit.backbones.transformer import BidirectionalTransformer, TransformerTiny
from lfq_kit.models.frozen_tokenizer import FrozenTokenizer
from lfq_kit.models.masked_lm import MaskedLM


def tiny_mlm(**kwargs) -> MaskedLM:
    kwargs.setdefault("grid", (2, 2, 4))
    kwargs.setdefault("codebook_size", 2**18)
    kwargs.setdefault("num_classes", 3)
    kwargs.setdefault("warmup_steps", 0)
    return MaskedLM(TransformerTiny(dropout=0.0, attn_dropout=0.0), **kwargs)


def test_the_input_is_the_mask_id_exactly_at_masked_positions_and_the_loss_ignores_the_rest(monkeypatch):
    model = tiny_mlm(label_smoothing=0.0, class_dropout=0.0)
    ids = torch.randint(0, 2**18, (6, 2, 2, 4))
    seen = {}

    def copy_input(inputs, labels):
        # A "model" that copies its input: certain of every visible token, uniform where the input is [MASK].
        seen["inputs"] = inputs
        subs = model.tokens.split(inputs.clamp(max=2**18 - 1))
        logits = torch.nn.functional.one_hot(subs, 512).float() * 50.0
        return logits.masked_fill((inputs == model.mask_id)[..., None, None], 0.0)

    monkeypatch.setattr(model, "forward", copy_input)
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    loss = model.training_step({"indices": ids, "label": torch.zeros(6, dtype=torch.long)}, 0)
    masked = seen["inputs"] == model.mask_id
    flat = ids.flatten(1)
    assert masked.any(1).all()  # at least one masked token per example
    assert torch.equal(seen["inputs"][~masked], flat[~masked])
    # about log V (= ln 2^18 nats), not 0: unmasked positions do not count
    assert math.isclose(float(loss), math.log(2**18), rel_tol=1e-5)


def test_guidance_zero_is_exactly_the_conditional_logits_and_otherwise_the_cfg_formula():
    model = tiny_mlm().eval()
    inputs = torch.randint(0, 2**18, (2, 16))
    inputs[:, 3:9] = model.mask_id
    labels = torch.tensor([0, 2])
    positions = torch.arange(3, 9).expand(2, 6)
    full = model(inputs, labels)
    assert torch.equal(model.guided_logits(inputs, labels, positions, 0.0), full[:, 3:9].float())
    uncond = model(inputs, torch.full_like(labels, model.null_class))[:, 3:9]
    expected = full[:, 3:9] + 2.0 * (full[:, 3:9] - uncond)
    assert torch.allclose(model.guided_logits(inputs, labels, positions, 2.0), expected, atol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"guidance_scale": 3.0}, {"temperature": 0.0}, {"top_k": 1}, {"top_k": 4}])
def test_generation_is_in_range_deterministic_and_keeps_the_condition(kwargs):
    model = tiny_mlm()
    condition = torch.randint(0, 2**18, (3, 1, 2, 4))
    labels = torch.tensor([0, 1, 2])
    a = model.generate(labels, steps=6, condition=condition, generator=torch.Generator().manual_seed(0), **kwargs)
    b = model.generate(labels, steps=6, condition=condition, generator=torch.Generator().manual_seed(0), **kwargs)
    assert a.shape == (3, 2, 2, 4) and a.dtype == torch.int64
    assert torch.equal(a, b)
    assert a.min() >= 0 and a.max() < 2**18
    assert torch.equal(a[:, :1], condition)
    assert model.training  # generate restores the mode


def test_argmax_decoding_ignores_the_generator():
    model = tiny_mlm()
    labels = torch.tensor([1, 1])
    a = model.generate(
        labels, steps=4, temperature=0.0, choice_temperature=0.0, generator=torch.Generator().manual_seed(0)
    )
    b = model.generate(
        labels, steps=4, temperature=0.0, choice_temperature=0.0, generator=torch.Generator().manual_seed(9)
    )
    assert torch.equal(a, b)


def test_generation_errors():
    model = tiny_mlm()
    with pytest.raises(ValueError, match=r"\[1, 16\]"):
        model.generate(torch.tensor([0]), steps=17)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.generate(torch.tensor([3]))
    with pytest.raises(ValueError, match="condition must be"):
        model.generate(torch.tensor([0]), condition=torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="batch size"):
        model.generate(None)


def test_a_tiny_model_memorises_one_sequence_per_class_and_generates_it():
    torch.manual_seed(0)
    model = MaskedLM(
        BidirectionalTransformer(dim=64, depth=2, num_heads=4, dropout=0.0, attn_dropout=0.0),
        grid=(1, 2, 4),
        codebook_size=2**18,
        num_classes=2,
        class_dropout=0.0,
        label_smoothing=0.0,
        warmup_steps=0,
    )
    sequences = torch.randint(0, 2**18, (2, 1, 2, 4))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    labels = torch.tensor([0, 1]).repeat(8)
    batch = {"indices": sequences.repeat(8, 1, 1, 1), "label": labels}
    model.log = lambda *a, **k: None
    for _ in range(150):
        loss = model.training_step(batch, 0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    out = model.generate(torch.tensor([0, 1]), steps=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, sequences)


def test_missing_grid_or_vocabulary_is_an_error():
    with pytest.raises(ValueError, match="codebook_size` and `grid`"):
        MaskedLM(TransformerTiny(), grid=(1, 2, 2))
    with pytest.raises(ValueError, match="does not split"):
        MaskedLM(TransformerTiny(), grid=(1, 2, 2), codebook_size=1000)
    MaskedLM(TransformerTiny(), grid=(1, 2, 2), codebook_size=1000, num_groups=1)  # FSQ-style vocabularies


def test_the_checkpoint_holds_the_tokenizer_path_and_hash_not_its_weights(tokenizer_ckpt, tmp_path):
    model = MaskedLM(TransformerTiny(), tokenizer=str(tokenizer_ckpt), clip_size=(5, 16, 16), warmup_steps=0)
    assert model.grid == (3, 8, 8) and model.codebook_size == 2**18
    assert not any(k.startswith(("frozen_tokenizer", "tokenizer.")) for k in model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for n, p in model.named_parameters())
    ckpt = {}
    model.on_save_checkpoint(ckpt)
    assert ckpt["tokenizer"] == {"path": str(tokenizer_ckpt), "hash": FrozenTokenizer(tokenizer_ckpt).hash}
    ckpt["tokenizer"]["hash"] = "0" * 64
    with pytest.raises(ValueError, match="hash 000000000000"):
        model.on_load_checkpoint(ckpt)


def test_consumer_and_tokenizer_disagreements_name_both_values(tokenizer_ckpt, tmp_path):
    with pytest.raises(ValueError, match=r"vocabulary of 1024 .* codebook_size 262144"):
        MaskedLM(TransformerTiny(), tokenizer=str(tokenizer_ckpt), clip_size=(5, 16, 16), codebook_size=1024)
    with pytest.raises(ValueError, match=r"grid \(3, 4, 4\) .* makes \(3, 8, 8\)"):
        MaskedLM(TransformerTiny(), tokenizer=str(tokenizer_ckpt), clip_size=(5, 16, 16), grid=(3, 4, 4))
    with pytest.raises(FileNotFoundError, match="lfq-kit fit --config configs/quickstart.yaml"):
        MaskedLM(TransformerTiny(), tokenizer=str(tmp_path / "missing.ckpt"), clip_size=(5, 16, 16))


def test_condition_frames_come_from_the_tokenizer_compression(tokenizer_ckpt):
    tok = FrozenTokenizer(tokenizer_ckpt)
    assert tok.temporal_compression == 2 and tok.causal
    assert tok.latent_frames(3) == 2 and tok.latent_frames(1) == 1
    model = MaskedLM(TransformerTiny(), tokenizer=str(tokenizer_ckpt), clip_size=(5, 16, 16), condition_frames=3)
    assert model.condition_latent_frames == 2
    with pytest.raises(ValueError, match="T = 1 \\+ 2k"):
        tok.latent_frames(4)


def test_video_batches_are_tokenized_by_the_frozen_tokenizer(tokenizer_ckpt):
    model = MaskedLM(
        TransformerTiny(), tokenizer=str(tokenizer_ckpt), clip_size=(5, 16, 16), num_classes=3, warmup_steps=0
    )
    video = torch.rand(2, 3, 5, 16, 16) * 2 - 1
    ids = model.batch_tokens({"video": video})
    assert torch.equal(ids, model.frozen_tokenizer.encode(video).flatten(1))
    with pytest.raises(ValueError, match=r"grid \(3, 4, 4\) differs from the model's grid \(3, 8, 8\)"):
        model.batch_tokens({"video": video[..., :8, :8]})
    trainer = L.Trainer(
        max_steps=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
    )
    from tiny_tokenizer import RandomClipData

    before = {k: v.clone() for k, v in model.frozen_tokenizer.model.state_dict().items()}
    trainer.fit(model, RandomClipData(frames=5, size=16))
    after = model.frozen_tokenizer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # frozen: never trained
