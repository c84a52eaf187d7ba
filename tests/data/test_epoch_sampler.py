"""Seeds and the rank-aware, resumable sampler: pure functions of (seed, epoch, rank, world), exact shards, a
saved position that resumes exactly, and Lightning leaving the sampler alone under DDP."""

from __future__ import annotations

import itertools
from collections import Counter

import lightning as L
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightning.pytorch.trainer.states import RunningStage
from torch.utils.data import DistributedSampler
from torchdata.stateful_dataloader import StatefulDataLoader

from lfq_kit.data import EpochSampler, SampleKey, base_seed, build_loader, rank_and_world, sample_seed, seeded
from lfq_kit.seeding import DEFAULT_SEED, mix_seed, split_key


class Echo(torch.utils.data.Dataset):
    """Returns its key and one global-generator draw: what a dataset sees from the sampler."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key):
        index, seed = split_key(key)
        with seeded(seed):
            return torch.tensor([index, int(torch.randint(2**62, ()))])


def test_base_seed_prefers_the_argument_then_seed_everything(monkeypatch):
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    assert base_seed() == DEFAULT_SEED == 0 and base_seed(7) == 7
    L.seed_everything(123, verbose=False)
    assert base_seed() == 123 and base_seed(7) == 7
    monkeypatch.setenv("PL_GLOBAL_SEED", "x")
    with pytest.raises(ValueError, match="PL_GLOBAL_SEED must be an integer, got 'x'"):
        base_seed()


def test_seeds_are_hashes_not_sums():
    # seed + epoch would make (1, 0) and (0, 1) equal, as DistributedSampler's generator does
    assert sample_seed(1, 0, 5) != sample_seed(0, 1, 5) and mix_seed(1, 0) != mix_seed(0, 1)
    seeds = {sample_seed(0, e, i) for e in range(10) for i in range(100)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
    assert sample_seed(3, 2, 1) == sample_seed(3, 2, 1)


def test_seeded_restores_the_callers_generator_and_split_key_checks_types():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with seeded(42):
        inside = torch.rand(2)
    assert torch.equal(torch.rand(3), expected)  # the caller's stream is untouched
    with seeded(42):
        assert torch.equal(torch.rand(2), inside)
    assert (
        split_key(SampleKey(3, 9)) == (3, 9) and split_key(4) == (4, None) and split_key(torch.tensor(5)) == (5, None)
    )
    with pytest.raises(TypeError, match="must be an int or a SampleKey"):
        split_key(1.5)


def _epoch(sampler: EpochSampler, epoch: int) -> list:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_training_shards_are_disjoint_cover_the_epoch_and_change_with_the_epoch():
    n, world = 12, 2
    shards = [_epoch(EpochSampler(range(n), world, r, train=True, seed=5), 3) for r in range(world)]
    indices = [[k.index for k in shard] for shard in shards]
    assert len(indices[0]) == len(indices[1]) == 6 and sorted(indices[0] + indices[1]) == list(range(n))
    assert all(k.seed == sample_seed(5, 3, k.index) for k in shards[0] + shards[1])
    # one process reads the same permutation: ranks interleave it
    whole = [k.index for k in _epoch(EpochSampler(range(n), 1, 0, seed=5), 3)]
    assert whole[0::2] == indices[0] and whole[1::2] == indices[1]
    assert whole != [k.index for k in _epoch(EpochSampler(range(n), 1, 0, seed=5), 4)]
    assert whole != [k.index for k in _epoch(EpochSampler(range(n), 1, 0, seed=6), 3)]
    # uneven: every rank takes ceil(n / W) steps; only the W - n % W padded items repeat
    uneven = [[k.index for k in _epoch(EpochSampler(range(7), 3, r, seed=1), 0)] for r in range(3)]
    counts = Counter(itertools.chain(*uneven))
    assert [len(s) for s in uneven] == [3, 3, 3] and set(counts) == set(range(7)) and sum(counts.values()) == 9


def test_evaluation_shards_cover_every_item_once_without_padding():
    for n, world in [(7, 2), (5, 3), (2, 4)]:
        shards = [list(EpochSampler(range(n), world, r, train=False)) for r in range(world)]
        assert sorted(itertools.chain(*shards)) == list(range(n))  # exactly once, no repeats
        assert [len(EpochSampler(range(n), world, r, train=False)) for r in range(world)] == [len(s) for s in shards]
        assert shards[0] == list(range(0, n, world)) and all(isinstance(i, int) for i in shards[0])


def test_invalid_rank_and_state():
    with pytest.raises(ValueError, match="rank must be in"):
        EpochSampler(range(3), 2, 2)
    with pytest.raises(ValueError, match="needs 'epoch' and 'yielded'"):
        EpochSampler(range(3)).load_state_dict({"epoch": 0})


def test_state_dict_resumes_the_epoch_right_after_the_saved_item():
    full = _epoch(EpochSampler(range(10), 1, 0, seed=2), 4)
    sampler = EpochSampler(range(10), 1, 0, seed=2)
    sampler.set_epoch(4)
    it = iter(sampler)
    head = [next(it) for _ in range(3)]
    state = sampler.state_dict()
    assert state == {"epoch": 4, "yielded": 3, "seed": 2, "num_replicas": 1}
    fresh = EpochSampler(range(10), 1, 0, seed=2)  # epoch 0 until the state says 4
    fresh.load_state_dict(state)
    fresh.set_epoch(4)  # what Lightning calls after restoring: the same epoch keeps the position
    assert head + list(fresh) == full
    assert list(fresh) == full  # the position applies to one iteration only
    stale = EpochSampler(range(10), 1, 0, seed=2)
    stale.load_state_dict({"epoch": 4, "yielded": 10})  # saved after the epoch's last item
    assert stale.epoch == 5 and stale.state_dict()["yielded"] == 0  # goes on with the next epoch
    assert _epoch(stale, 5) == _epoch(EpochSampler(range(10), 1, 0, seed=2), 5)  # the next epoch is whole
    other = EpochSampler(range(10), 1, 0, seed=2)
    other.load_state_dict(state)  # mid-epoch 4, but the loop moves to epoch 6: the position is dropped
    assert _epoch(other, 6) == _epoch(EpochSampler(range(10), 1, 0, seed=2), 6)
    with pytest.warns(UserWarning, match="saved with seed=2 under seed=3"):
        EpochSampler(range(10), seed=3).load_state_dict(state)


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_loader_resumes_with_the_remaining_batches(workers):
    loader = build_loader(Echo(23), 4, train=True, seed=9, num_workers=workers)
    loader.sampler.set_epoch(1)
    full = list(loader)
    assert len(full) == 6 and torch.cat(full)[:, 0].sort().values.tolist() == list(range(23))
    it = iter(loader)
    for _ in range(2):
        next(it)
    state = loader.state_dict()
    del it
    resumed = build_loader(Echo(23), 4, train=True, seed=9, num_workers=workers)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert len(rest) == 4 and all(torch.equal(a, b) for a, b in zip(rest, full[2:]))
    # the draws inside an item depend on its key alone, not on the worker that reads it
    single = build_loader(Echo(23), 4, train=True, seed=9, num_workers=0)
    single.sampler.set_epoch(1)
    assert torch.equal(torch.cat(list(single)), torch.cat(full))


def _ddp_trainer(tmp_path) -> L.Trainer:
    # Building the trainer spawns nothing: the data connector can be asked what it would do under 2 ranks.
    return L.Trainer(accelerator="cpu", devices=2, strategy="ddp", default_root_dir=tmp_path, logger=False)


@pytest.mark.parametrize("stage", [RunningStage.TRAINING, RunningStage.VALIDATING, RunningStage.PREDICTING])
def test_lightning_keeps_the_sampler_under_ddp(tmp_path, stage):
    trainer = _ddp_trainer(tmp_path)
    assert trainer._accelerator_connector.is_distributed and trainer._accelerator_connector.use_distributed_sampler
    assert rank_and_world(trainer) == (0, 2)  # what the loaders shard by: the strategy's sampler arguments
    train = stage == RunningStage.TRAINING
    loader = build_loader(Echo(10), 3, train=train, seed=1)
    assert isinstance(loader, StatefulDataLoader) and isinstance(loader.sampler, DistributedSampler)
    prepared = trainer._data_connector._prepare_dataloader(loader, shuffle=train, mode=stage)
    if stage != RunningStage.PREDICTING:
        assert prepared is loader  # not re-created with Lightning's own DistributedSampler
    else:  # re-created only to record batch indices, around the same sampler
        assert isinstance(prepared, StatefulDataLoader) and prepared.batch_sampler.sampler is loader.sampler
        assert [i for b in prepared.batch_sampler for i in b] == list(range(10))


def _rank_worker(rank: int, init_file: str, results) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        train = build_loader(Echo(11), 2, train=True, seed=3)  # no trainer: the process group says rank and world
        train.sampler.set_epoch(2)
        evaluation = build_loader(Echo(11), 2, train=False)
        results[rank] = (rank_and_world(), torch.cat(list(train)), torch.cat(list(evaluation))[:, 0].tolist())
    finally:
        dist.destroy_process_group()


def test_two_processes_shard_by_the_process_group(tmp_path):
    results = mp.Manager().dict()
    mp.start_processes(_rank_worker, args=(str(tmp_path / "init"), results), nprocs=2, join=True, start_method="fork")
    assert [results[r][0] for r in range(2)] == [(0, 2), (1, 2)]
    train = [results[r][1] for r in range(2)]
    assert len(train[0]) == len(train[1]) == 6  # ⌈11 / 2⌉ steps each: one padded repeat
    indices = train[0][:, 0].tolist() + train[1][:, 0].tolist()
    assert sorted(set(indices)) == list(range(11)) and len(indices) == 12
    one = build_loader(Echo(11), 2, train=True, seed=3)
    one.sampler.set_epoch(2)
    draws = {int(i): int(d) for i, d in torch.cat(list(one)).tolist()}
    assert all(draws[i] == d for t in train for i, d in t.tolist())  # same items as one process draws
    assert sorted(results[0][2] + results[1][2]) == list(range(11))  # evaluation: each once
