"""Token factorization (paper Sec. 3.1; invariant 18): split/merge, embeddings, tied heads, loss and sampling."""

import math

import pytest
import torch
import torch.nn.functional as F

from lfq_kit.nn.factorized_tokens import FactorizedTokens, merge_tokens, split_tokens


def test_split_and_merge_round_trip_every_18_bit_id():
    ids = torch.arange(2**18)
    subs = split_tokens(ids, 512, 2)
    assert subs.shape == (2**18, 2) and subs.min() == 0 and subs.max() == 511
    assert torch.equal(merge_tokens(subs, 512), ids)
    assert torch.equal(subs[:, 0], ids & 511) and torch.equal(subs[:, 1], ids >> 9)  # A = bits 0-8, B = bits 9-17


def test_bit_17_alone_is_a_zero_and_b_256():
    assert split_tokens(torch.tensor([1 << 17]), 512, 2).tolist() == [[0, 256]]
    assert split_tokens(torch.tensor([1]), 512, 2).tolist() == [[1, 0]]
    assert split_tokens(torch.tensor([(1 << 9) + 3]), 512, 2).tolist() == [[3, 1]]


def test_three_groups_and_no_factorization():
    ids = torch.arange(2**12)
    assert torch.equal(merge_tokens(split_tokens(ids, 16, 3), 16), ids)
    tokens = FactorizedTokens(1000, 8, num_groups=1)  # FSQ 8·5·5·5: no split
    assert tokens.sub_vocab == 1000


def test_a_vocabulary_that_does_not_split_is_refused():
    with pytest.raises(ValueError, match="1000 ids does not split into 2"):
        FactorizedTokens(1000, 8, num_groups=2)


def test_embedding_is_the_sum_of_the_sub_token_rows_and_mask_gets_its_own():
    tokens = FactorizedTokens(2**18, 16, num_groups=2)
    ids = torch.tensor([[5 + 512 * 7, tokens.mask_id]])
    emb = tokens.embed(ids)
    assert torch.allclose(emb[0, 0], tokens.tables[5] + tokens.tables[512 + 7])
    assert torch.equal(emb[0, 1], tokens.mask_embedding)


def test_heads_are_tied_to_the_tables():
    tokens = FactorizedTokens(2**18, 16, num_groups=2)
    h = torch.randn(3, 16)
    logits = tokens.logits(h)
    assert logits.shape == (3, 2, 512)
    assert torch.allclose(logits[:, 1], h @ tokens.tables[512:].T + tokens.bias[1])
    assert sum(p.numel() for p in tokens.parameters()) == 2 * 512 * 16 + 16 + 2 * 512


def test_log_prob_and_loss_are_sums_of_the_group_cross_entropies():
    tokens = FactorizedTokens(2**18, 8, num_groups=2)
    logits = torch.randn(4, 2, 512)
    ids = torch.randint(0, 2**18, (4,))
    subs = split_tokens(ids, 512, 2)
    expected = F.cross_entropy(logits[:, 0], subs[:, 0], reduction="none") + F.cross_entropy(
        logits[:, 1], subs[:, 1], reduction="none"
    )
    assert torch.allclose(-tokens.log_prob(logits, ids), expected, atol=1e-5)
    weight = torch.tensor([True, False, True, False])
    assert torch.allclose(tokens.loss(logits, ids, weight), expected[weight].mean(), atol=1e-5)
    # uniform logits cost exactly ln V
    assert math.isclose(float(tokens.loss(torch.zeros(4, 2, 512), ids)), math.log(2**18), rel_tol=1e-6)


def test_out_of_range_ids_are_refused():
    tokens = FactorizedTokens(2**18, 8, num_groups=2)
    with pytest.raises(ValueError, match=r"\[0, 262145\)"):
        tokens.embed(torch.tensor([2**18 + 1]))
    with pytest.raises(ValueError, match=r"\[0, 262144\)"):
        tokens.loss(torch.zeros(1, 2, 512), torch.tensor([2**18]))
    with pytest.raises(ValueError, match="integer"):
        tokens.embed(torch.tensor([1.5]))


def test_sampling_argmax_top_k_and_determinism():
    tokens = FactorizedTokens(2**18, 8, num_groups=2)
    logits = torch.randn(64, 2, 512)
    argmax = tokens.merge(logits.argmax(-1))
    assert torch.equal(tokens.sample(logits, temperature=0)[0], argmax)
    assert torch.equal(tokens.sample(logits, temperature=3.0, top_k=1)[0], argmax)
    ids, logp = tokens.sample(logits, temperature=0)
    assert torch.isfinite(logp).all()
    assert torch.allclose(logp, tokens.log_prob(logits, ids))
    a = tokens.sample(logits, generator=torch.Generator().manual_seed(3))[0]
    b = tokens.sample(logits, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)
    top = tokens.sample(logits, top_k=5, generator=torch.Generator().manual_seed(0))[0]
    allowed = logits.topk(5, dim=-1).indices  # (64, 2, 5)
    assert (tokens.split(top).unsqueeze(-1) == allowed).any(-1).all()


def test_sampling_follows_the_distribution():
    tokens = FactorizedTokens(4, 2, num_groups=1, mask_token=False)
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    logits = probs.log().expand(20000, 1, 4)
    ids, _ = tokens.sample(logits, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(ids, minlength=4).float() / 20000
    assert torch.allclose(freq, probs, atol=0.015)
