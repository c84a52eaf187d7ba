"""Activation checkpointing (issue 13): the MAGVIT-v2 encoder/decoder (per residual block) and the transformer block
runner recompute in backward, and give the same outputs and gradients as without it."""

import pytest
import torch

from lfq_kit.backbones import Magvit2Decoder, Magvit2Encoder
from lfq_kit.backbones.transformer import TransformerTiny
from lfq_kit.nn import ResBlock

TINY = dict(base_channels=8, channel_multipliers=(1, 2), num_res_blocks=2, temporal_downsample=(True,), num_groups=4)


def _count_calls(model, kind) -> list[int]:
    """Count the forward runs of every ``kind`` sub-module (not with hooks: checkpoint's recomputation skips them)."""
    calls = [0]

    def counting(forward):
        def wrapped(*args, **kwargs):
            calls[0] += 1
            return forward(*args, **kwargs)

        return wrapped

    for m in model.modules():
        if isinstance(m, kind):
            m.forward = counting(m.forward)
    return calls


def _loss_and_grads(model, x, kind):
    calls = _count_calls(model, kind)
    torch.manual_seed(1)  # dropout draws, when there are any
    out = model(x)
    forward_calls = calls[0]
    weights = torch.linspace(-1, 1, out.numel()).view_as(out)
    loss = (out * weights).sum()
    loss.backward()
    return (
        loss.detach(),
        out.detach(),
        {n: p.grad.clone() for n, p in model.named_parameters()},
        forward_calls,
        calls[0],
    )


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda ac: Magvit2Encoder(out_channels=6, activation_checkpointing=ac, **TINY), (2, 3, 5, 16, 16)),
        (lambda ac: Magvit2Decoder(in_channels=6, activation_checkpointing=ac, **TINY), (2, 6, 3, 8, 8)),
    ],
    ids=["encoder", "decoder"],
)
def test_checkpointed_conv_stacks_give_the_same_loss_and_gradients(build, shape):
    torch.manual_seed(0)
    plain = build(False).train()
    checked = build(True).train()
    checked.load_state_dict(plain.state_dict())
    x = torch.randn(shape)
    loss0, out0, grads0, f0, total0 = _loss_and_grads(plain, x, ResBlock)
    loss1, out1, grads1, f1, total1 = _loss_and_grads(checked, x, ResBlock)
    assert torch.allclose(out0, out1, atol=1e-6, rtol=0) and abs(loss0 - loss1) <= 1e-6 * max(1.0, abs(loss0))
    for name in grads0:
        assert torch.allclose(grads0[name], grads1[name], atol=1e-6, rtol=1e-6), name
    assert f0 == f1 == 6 and total0 == 6 and total1 == 12  # each residual block really ran again in backward
    assert _loss_and_grads(checked.eval(), x, ResBlock)[-1] == 6  # eval mode: not checkpointed, nothing recomputed


def test_checkpointed_transformer_blocks_give_the_same_loss_and_gradients_with_dropout():
    torch.manual_seed(0)
    plain = TransformerTiny(dropout=0.1, attn_dropout=0.1).train()
    checked = TransformerTiny(dropout=0.1, attn_dropout=0.1, activation_checkpointing=True).train()
    checked.load_state_dict(plain.state_dict())
    x = torch.randn(2, 7, 128)
    kind = type(plain.blocks[0])
    loss0, out0, grads0, _, total0 = _loss_and_grads(plain, x, kind)
    loss1, out1, grads1, _, total1 = _loss_and_grads(checked, x, kind)
    assert torch.allclose(out0, out1, atol=1e-6, rtol=0)  # the recomputation draws the same dropout masks
    for name in grads0:
        assert torch.allclose(grads0[name], grads1[name], atol=1e-6, rtol=1e-6), name
    assert (total0, total1) == (4, 8)
