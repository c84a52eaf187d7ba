"""``compile: true`` (issue 13): the tokenizer's encoder/decoder and the masked LM's backbone are compiled in place in
``configure_model`` (parameter names, hence checkpoints, unchanged) and compute what the eager modules compute."""

import copy
import functools
import os
import shutil

import pytest
import torch
from tiny_tokenizer import RandomClips, tiny_tokenizer

from lfq_kit.backbones.transformer import TransformerTiny
from lfq_kit.models.masked_lm import MaskedLM

_NO_CXX = shutil.which("g++") is None and shutil.which("c++") is None
_SLOW = os.environ.get("LFQ_KIT_SLOW_TESTS") != "1"
# Dynamo's tracing with AOT autograd but no code generation runs in seconds; inductor (the default backend) adds C++
# code generation, about a minute per model on a busy 2-core CPU: opt-in.
BACKENDS = [
    "aot_eager",
    pytest.param(
        "inductor",
        marks=[
            pytest.mark.skipif(_NO_CXX, reason="inductor's CPU backend needs a C++ compiler"),
            pytest.mark.skipif(
                _SLOW, reason="inductor compiles for about 60 s per model here; LFQ_KIT_SLOW_TESTS=1 runs it"
            ),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Make ``nn.Module.compile()`` (what ``configure_model`` calls) use this backend."""
    compile_ = torch.nn.Module.compile
    monkeypatch.setattr(torch.nn.Module, "compile", functools.partialmethod(compile_, backend=request.param))
    torch._dynamo.reset()
    yield request.param
    torch._dynamo.reset()


def _compiled_pair(model):
    eager = copy.deepcopy(model)
    model.configure_model()
    return eager, model


def test_masked_lm_compiles_its_backbone_and_matches_the_eager_forward(backend):
    torch.manual_seed(0)
    model = MaskedLM(
        TransformerTiny(dropout=0.0, attn_dropout=0.0), grid=(2, 2, 4), codebook_size=2**18, num_classes=3, compile=True
    ).eval()
    keys = list(model.state_dict())
    eager, model = _compiled_pair(model)
    assert model.backbone._compiled_call_impl is not None and eager.backbone._compiled_call_impl is None
    assert list(model.state_dict()) == keys  # same names: checkpoints load either way
    ids = torch.randint(0, 2**18, (2, 16))
    labels = torch.tensor([0, 2])
    with torch.no_grad():
        assert torch.allclose(model(ids, labels), eager(ids, labels), atol=1e-4, rtol=1e-4)


def test_tokenizer_compiles_encoder_and_decoder_and_matches_the_eager_reconstruction(backend):
    torch.manual_seed(0)
    model = tiny_tokenizer(compile=True).eval()
    eager, model = _compiled_pair(model)
    for gen in (model.generator, model.ema.module):
        assert gen.encoder._compiled_call_impl is not None and gen.decoder._compiled_call_impl is not None
    assert model.quantizer._compiled_call_impl is None  # the quantizer stays eager
    video = RandomClips(2).videos
    with torch.no_grad():
        recon, out = model(video)
        recon_eager, out_eager = eager(video)
    assert torch.equal(out.indices, out_eager.indices)
    assert torch.allclose(recon, recon_eager, atol=1e-4, rtol=1e-4)
