"""The indices-only inference path: ``quantize_indices(z) == forward(z).indices`` in eval mode, and nothing else."""

import pytest
import torch
from small_quantizers import BUILTIN, make

from lfq_kit.quantizers import VQ, Quantizer, QuantizerOutput
from lfq_kit.registry import QUANTIZERS

SPATIAL = [(), (7,), (3, 4, 5)]

VQ_CONFIGS = {
    "plain": {},
    "projection": {"codebook_dim": 3},
    "l2": {"use_l2_norm": True},
    "ema_restarts": {"ema_update": True, "dead_code_threshold": 2.0},
}


@pytest.mark.parametrize("spatial", SPATIAL, ids=str)
@pytest.mark.parametrize("name", BUILTIN)
def test_equals_eval_forward_indices(name, spatial):
    q = make(name)
    q(torch.randn(4, q.dim, 64))  # one training step first (VQ's EMA / restarts have moved the codebook)
    q.eval()
    z = torch.randn(3, q.dim, *spatial) * 2
    indices = q.quantize_indices(z)
    assert indices.dtype == torch.int64 and indices.shape == (3, *spatial)
    assert torch.equal(indices, q(z).indices)


@pytest.mark.parametrize("name", BUILTIN)
def test_bf16_input_and_autocast(name):
    q = make(name).eval()
    z = torch.randn(2, q.dim, 5, 6).bfloat16()
    assert torch.equal(q.quantize_indices(z), q(z).indices)
    assert torch.equal(q.quantize_indices(z), q(z.float()).indices)  # invariant 7: bf16 indices are fp32's
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(q.quantize_indices(z.float()), q(z.float()).indices)


@pytest.mark.parametrize(
    "name, kwargs", [("VQ", {"dim": 6, "codebook_size": 32, "codebook_dim": 3}), ("FSQ", {"dim": 6, "levels": [3, 4]})]
)
def test_projections_in_a_module_cast_to_bf16(name, kwargs):
    # precision="bf16-true" casts the projections to bf16; the lookup still runs in float32, as forward's.
    q = QUANTIZERS.get(name)(**kwargs).to(torch.bfloat16).eval()
    z = torch.randn(2, 6, 5, dtype=torch.bfloat16)
    assert torch.equal(q.quantize_indices(z), q(z).indices)


@pytest.mark.parametrize("name", BUILTIN)
def test_builds_no_graph_and_computes_no_loss(name, monkeypatch):
    q = make(name).train()
    z = torch.randn(2, q.dim, 9, requires_grad=True)
    monkeypatch.setattr(type(q), "forward", lambda self, z: pytest.fail("quantize_indices ran the full forward"))
    indices = q.quantize_indices(z)
    assert not indices.requires_grad and indices.grad_fn is None


@pytest.mark.parametrize("config", VQ_CONFIGS)
def test_vq_updates_no_state_even_in_training_mode(config):
    torch.manual_seed(0)
    q = VQ(dim=6, codebook_size=32, **VQ_CONFIGS[config]).train()
    q(torch.randn(4, 6, 16))  # usage statistics now differ from their initial values
    before = {k: v.clone() for k, v in q.state_dict().items()}
    z = torch.randn(3, 6, 40)
    indices = q.quantize_indices(z)
    after = q.state_dict()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    q.eval()
    assert torch.equal(indices, q(z).indices)


def test_vq_indices_are_the_nearest_codes():
    torch.manual_seed(1)
    q = VQ(dim=8, codebook_size=300).train()
    z = torch.randn(2, 8, 33)
    x = z.movedim(1, -1).reshape(-1, 8).double()
    nearest = torch.cdist(x, q.codebook.detach().double(), compute_mode="donot_use_mm_for_euclid_dist").argmin(-1)
    assert torch.equal(q.quantize_indices(z).reshape(-1), nearest)


@pytest.mark.parametrize("name", ["LFQ", "BSQ"])
def test_sign_quantizers_give_the_lsb_first_index_and_strict_zero(name):
    q = QUANTIZERS.get(name)(dim=4)
    z = torch.tensor([[1.0, -1.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0]]).T.unsqueeze(0)  # (1, 4, 2)
    assert q.quantize_indices(z).tolist() == [[1 + 8, 0]]


class _PluginQuantizer(Quantizer):
    """A plugin-style quantizer without its own quantize_indices: the base default must serve it."""

    def __init__(self, dim: int = 3) -> None:
        super().__init__()
        self.dim, self.codebook_size = dim, 2**dim

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        self.check_input(z)
        bits = z > 0
        indices = (bits.long() * (1 << torch.arange(self.dim)).view(1, -1, *([1] * (z.ndim - 2)))).sum(1)
        return QuantizerOutput(torch.where(bits, 1.0, -1.0), indices, (z**2).mean(), {})


def test_base_default_serves_plugins_without_a_graph():
    q = _PluginQuantizer()
    z = torch.randn(2, 3, 5, requires_grad=True)
    indices = q.quantize_indices(z)
    assert torch.equal(indices, q(z).indices) and indices.grad_fn is None
    with pytest.raises(ValueError, match="non-finite"):
        q.quantize_indices(torch.full((1, 3, 2), float("nan")))
