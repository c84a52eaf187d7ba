"""MaskGIT masking and decoding (reference Sec. 4; invariants 16 and 17)."""

import math

import pytest
import torch

from lfq_kit.models._maskgit import cosine_mask, decoding_mask_counts, maskgit_decode

PUBLISHED = [253, 247, 236, 221, 203, 181, 155, 128, 97, 66, 33]  # reference Sec. 4, N = 256, S = 12


def test_decoding_mask_counts_match_the_reference():
    assert decoding_mask_counts(256, 12) == PUBLISHED + [0]
    # the rule itself, for other sizes: floor(N cos(pi/2 (s+1)/S)), >= 1, strictly decreasing
    counts = decoding_mask_counts(100, 7)
    expected, masked = [], 100
    for s in range(6):
        masked = max(1, min(math.floor(100 * math.cos(math.pi / 2 * (s + 1) / 7)), masked - 1))
        expected.append(masked)
    assert counts == expected + [0]
    assert decoding_mask_counts(5, 5) == [4, 3, 2, 1, 0]  # clamped to fewer than are masked now


def test_more_steps_than_tokens_is_an_error():
    with pytest.raises(ValueError, match=r"\[1, 10\]"):
        decoding_mask_counts(10, 11)


def _random_step(vocab: int, seen: list):
    def step(current, positions):
        seen.append((current.clone(), positions.clone()))
        g = torch.Generator().manual_seed(len(seen))
        sampled = torch.randint(0, vocab, positions.shape, generator=g)
        return sampled, torch.rand(positions.shape, generator=g).log()

    return step


def test_decoding_masks_the_scheduled_counts_and_never_changes_known_tokens():
    b, n, vocab = 3, 256, 1000
    ids = torch.randint(0, vocab, (b, n))
    unknown = torch.ones(b, n, dtype=torch.bool)
    seen = []
    out = maskgit_decode(
        ids, unknown, _random_step(vocab, seen), mask_id=vocab, steps=12, generator=torch.Generator().manual_seed(0)
    )
    masked_per_step = [int((current == vocab).sum(1)[0]) for current, _ in seen]
    assert masked_per_step == [256] + PUBLISHED
    assert all(int(p.shape[1]) == m for (_, p), m in zip(seen, masked_per_step))
    assert (out != vocab).all() and out.min() >= 0 and out.max() < vocab
    # tokens fixed at a step stay fixed: every later input agrees with the output where it is not masked
    for current, _ in seen:
        keep = current != vocab
        assert torch.equal(current[keep], out[keep])


def test_condition_tokens_never_change():
    b, n, vocab = 2, 64, 50
    ids = torch.randint(0, vocab, (b, n))
    unknown = torch.zeros(b, n, dtype=torch.bool)
    unknown[:, 16:] = True
    seen = []
    out = maskgit_decode(ids, unknown, _random_step(vocab, seen), mask_id=vocab, steps=8)
    assert torch.equal(out[:, :16], ids[:, :16])
    for current, positions in seen:
        assert torch.equal(current[:, :16], ids[:, :16])
        assert (positions >= 16).all()
    assert int((seen[0][0] == vocab).sum()) == b * 48


def test_lowest_scores_are_re_masked_without_noise():
    # choice_temperature 0: exactly the least likely samples stay masked
    ids = torch.zeros(1, 8, dtype=torch.long)
    unknown = torch.ones(1, 8, dtype=torch.bool)
    scores = torch.tensor([[0.8, 0.1, 0.5, 0.9, 0.3, 0.7, 0.2, 0.6]]).log()
    seen = []

    def step(current, positions):
        seen.append(current.clone())
        return positions + 1, scores.gather(1, positions)

    maskgit_decode(ids, unknown, step, mask_id=99, steps=2, choice_temperature=0.0)
    remasked = (seen[1] == 99).nonzero()[:, 1].tolist()
    assert sorted(remasked) == [1, 2, 4, 6, 7]  # floor(8 cos(pi/4)) = 5 lowest scores: .1 .5 .3 .2 .6


def test_training_mask_counts_follow_the_cosine_schedule_and_mask_at_least_one():
    ids = torch.arange(64).repeat(4000, 1)
    masked = cosine_mask(ids, mask_id=999, generator=torch.Generator().manual_seed(0))
    counts = masked.mask.sum(1)
    assert counts.min() >= 1 and counts.max() <= 64
    assert torch.equal(masked.inputs == 999, masked.mask)  # the mask id exactly at masked positions
    assert torch.equal(masked.inputs[~masked.mask], ids[~masked.mask])
    # E[ceil(cos(pi r / 2) N)] for r ~ U(0, 1) is about 2N/pi + 1/2
    assert abs(counts.float().mean().item() - (2 * 64 / math.pi + 0.5)) < 0.6
    assert int(cosine_mask(ids[:2], 999, ratio=1e-6).mask.sum(1).min()) == 1  # r -> 1 still masks one


def test_fixed_ratio_and_non_maskable_positions():
    ids = torch.zeros(8, 40, dtype=torch.long)
    maskable = torch.ones(8, 40, dtype=torch.bool)
    maskable[:4, :10] = False
    masked = cosine_mask(ids, 7, ratio=0.5, maskable=maskable, generator=torch.Generator().manual_seed(1))
    assert not masked.mask[:4, :10].any()
    assert masked.mask[:4].sum(1).tolist() == [15] * 4 and masked.mask[4:].sum(1).tolist() == [20] * 4
