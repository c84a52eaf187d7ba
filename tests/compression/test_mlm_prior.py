"""The masked-LM prior: a fixed coding order and MaskGIT group schedule, exact round trips whatever the batch size,
coding cost equal to the model's cross-entropy, and errors for a grid it was not trained on."""

import numpy as np
import pytest
import torch

from lfq_kit.compression import MaskedLMPrior
from lfq_kit.compression.mlm_prior import coding_groups, coding_order
from lfq_kit.compression.range_coding import STREAM_FLUSH_BITS
from lfq_kit.models import MaskedLM


def _splitmix64(x: int) -> int:  # the textbook finalizer, in Python integers: the oracle
    m = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def test_coding_order_is_a_fixed_permutation():
    order = coding_order(320, seed=0)
    assert sorted(order.tolist()) == list(range(320))
    assert (coding_order(320, 0) == order).all() and not (coding_order(320, 1) == order).all()
    for seed in (0, 7):
        keys = [_splitmix64((p + seed * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)) for p in range(320)]
        assert coding_order(320, seed).tolist() == sorted(range(320), key=keys.__getitem__)
    assert coding_order(5, 0).tolist() == [3, 4, 1, 2, 0]  # the same on every platform and library version


def test_groups_follow_the_maskgit_schedule():
    groups = coding_groups(256, 12)
    assert [b - a for a, b in groups] == [3, 6, 11, 15, 18, 22, 26, 27, 31, 31, 33, 33]
    assert groups[0][0] == 0 and groups[-1][1] == 256 and all(a[1] == b[0] for a, b in zip(groups, groups[1:]))
    with pytest.raises(ValueError, match="decoding steps must be in \\[1, 10\\]"):
        coding_groups(10, 11)


def test_encode_with_batch_8_decode_with_batch_1_gives_identical_tokens(mlm_prior):
    ids = torch.randint(0, 2**18, (8, 3, 8, 8))
    payloads = mlm_prior.encode(ids)  # one forward pass of 8 chunks per step
    decoded = torch.cat([mlm_prior.decode([p], (3, 8, 8)) for p in payloads])  # batches of 1
    assert torch.equal(decoded, ids)


def test_payload_is_the_models_cross_entropy_within_one_percent(mlm_prior):
    ids = torch.randint(0, 2**18, (2, 3, 8, 8))
    ideal = mlm_prior.ideal_bits(ids)
    for bits, payload in zip(ideal, mlm_prior.encode(ids)):
        assert bits < 8 * len(payload) <= 1.01 * bits + STREAM_FLUSH_BITS
    # random ids under a barely trained model: about 18 bits each (log2 of 2^18), certainly not far below
    assert ideal[0] / 192 > 17


def test_identity_names_weights_steps_and_seed(mlm_ckpt):
    model = lambda: MaskedLM.load_from_checkpoint(mlm_ckpt, map_location="cpu")  # noqa: E731
    a, b, c = MaskedLMPrior(model(), steps=4), MaskedLMPrior(model(), steps=5), MaskedLMPrior(model(), steps=4, seed=1)
    assert a.identity == MaskedLMPrior(model(), steps=4).identity
    assert len({a.identity, b.identity, c.identity}) == 3 and a.params == (4, 0) and c.params == (4, 1)
    other = model()
    with torch.no_grad():
        other.tokens.bias[0, 0] += 1.0
    assert MaskedLMPrior(other, steps=4).identity != a.identity


def test_a_chunk_grid_other_than_the_models_is_refused(mlm_prior):
    with pytest.raises(
        ValueError,
        match=r"models token grids \(3, 8, 8\) \(clips of 5 × 16 × 16\), but the chunk's "
        r"token grid is \(9, 8, 8\)",
    ):
        mlm_prior.check_grid((9, 8, 8))
    assert mlm_prior.required_chunk_frames() == 5


def test_the_prior_uses_the_models_own_logits_head_transform_included():
    """Regression: the prior once called the tied heads directly and skipped MaskGIT's head transform."""
    from lfq_kit.backbones.transformer import BidirectionalTransformer
    from lfq_kit.compression.mlm_prior import log_prob_weights

    torch.manual_seed(0)
    backbone = BidirectionalTransformer(dim=16, depth=1, num_heads=2, dropout=0.0, attn_dropout=0.0)
    model = MaskedLM(backbone, grid=(1, 2, 4), codebook_size=2**18, input_norm=True, head_transform=True).eval()
    prior = MaskedLMPrior(model, steps=2)
    current = torch.randint(0, 2**18, (2, 8)).masked_fill(torch.rand(2, 8) < 0.5, model.mask_id)
    positions = torch.tensor([1, 5])
    labels = torch.full((2,), model.null_class)
    with torch.no_grad():
        expected = log_prob_weights(model(current, labels)[:, positions].log_softmax(-1))
    assert np.array_equal(prior._weights(current, positions), expected)
