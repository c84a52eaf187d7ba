"""Exact, rank-aware data order and augmentation of the real DataModules: a training sample is a function of
(seed, epoch, index) whatever the worker count or rank, a loader state taken after k batches resumes a fresh
module's loader with exactly the remaining batches, and 2 ranks split training and evaluation exactly."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from lfq_kit.data import (
    CameraMotionDataModule,
    ImageFolderDataModule,
    SampleClipsDataModule,
    SkippedVideoWarning,
    TokenDataModule,
    UCF101DataModule,
)

Factory = Callable[..., Any]


def _fit(factory: Factory, **kwargs) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedVideoWarning)  # the trees' known-bad files
        dm = factory(**kwargs)
        dm.setup("fit")
    return dm


def _key(batch: dict) -> torch.Tensor:
    """What identifies a batch's content: the video (or token) tensor."""
    return batch["video"] if "video" in batch else batch["indices"]


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(torch.equal(_key(x), _key(y)) for x, y in zip(a, b))


def _epoch_with_state(dm: Any, epoch: int, k: int) -> tuple[list[dict], dict]:
    """Every batch of ``epoch`` and the loader's state after its first ``k``."""
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(epoch)
    batches, state = [], None
    for batch in loader:
        batches.append(batch)
        if len(batches) == k:
            state = loader.state_dict()
    return batches, state


def _check_resume(factory: Factory, epoch: int = 1, k: int = 2) -> list[dict]:
    full, state = _epoch_with_state(_fit(factory), epoch, k)
    assert len(full) > k
    loader = _fit(factory).train_dataloader()  # a fresh module: epoch 0, until the state says otherwise
    loader.load_state_dict(state)
    assert _same(list(loader), full[k:])
    return full


@pytest.fixture
def samples(tmp_path):
    def make(**kwargs):
        args = dict(
            frames_per_clip=5,
            resolution=32,
            batch_size=2,
            clips_per_epoch=8,
            clips_per_video=3,
            cache_frames=True,
            train_crop_size=24,
            manifest_dir=str(tmp_path),
            seed=11,
        )
        return SampleClipsDataModule(**{**args, **kwargs})

    return make


def test_sample_clips_resume_mid_epoch_exactly(samples):
    _check_resume(samples)


def test_sample_clips_are_a_function_of_seed_epoch_index_not_of_workers(samples):
    epochs = [_epoch_with_state(_fit(samples), e, 1)[0] for e in (0, 1)]
    with_workers = _epoch_with_state(_fit(samples, num_workers=2), 1, 1)[0]
    assert _same(with_workers, epochs[1])  # byte-identical clips with 2 workers
    assert not _same(epochs[0], epochs[1])  # another epoch: another order and other clips
    # the same index in another epoch is another clip (start, crop or flip)
    by_index = [{int(i): v for b in e for i, v in zip(b["index"], b["video"])} for e in epochs]
    assert all(not torch.equal(by_index[0][i], by_index[1][i]) for i in range(8))
    # another seed, another epoch 1
    assert not _same(_epoch_with_state(_fit(samples, seed=12), 1, 1)[0], epochs[1])


def test_ucf101_resume_mid_epoch_exactly_with_replaced_bad_clips(ucf_tree, tmp_path):
    def make(**kwargs):
        return UCF101DataModule(
            str(ucf_tree.root),
            frames_per_clip=9,
            resolution=32,
            batch_size=3,
            num_workers=0,
            manifest_dir=str(tmp_path),
            seed=4,
            **kwargs,
        )

    full = _check_resume(make, epoch=2, k=1)
    assert sum(len(b["skipped"]) for b in full) >= 1  # the corrupt-frames file was met and replaced (seeded)


def test_image_folder_resume_mid_epoch_exactly(image_tree):
    def make(**kwargs):
        args = dict(resolution=24, batch_size=2, num_workers=0, crop_scale=(0.3, 1.0), seed=5)
        return ImageFolderDataModule(str(image_tree.root), **{**args, **kwargs})

    full = _check_resume(make, epoch=3, k=2)
    assert _same(_epoch_with_state(_fit(make, num_workers=2), 3, 1)[0], full)


def test_camera_motion_resume_mid_epoch_exactly():
    def make(**kwargs):
        return CameraMotionDataModule(
            frames_per_clip=5, resolution=16, batch_size=2, clips_per_epoch=8, seed=6, **kwargs
        )

    full = _check_resume(make, epoch=1, k=3)
    labels = [int(x) for b in full for x in b["label"]]
    again = [int(x) for b in _epoch_with_state(_fit(make), 1, 1)[0] for x in b["label"]]
    assert labels == again and len(set(labels)) > 1  # seeded motions, not one constant


def _write_token_split(folder, n: int) -> None:
    folder.mkdir(parents=True)
    ids = torch.arange(n * 2 * 2 * 2, dtype=torch.int32).reshape(n, 2, 2, 2) % 16
    save_file(
        {"indices": ids, "labels": torch.arange(n) % 3, "clip_starts": torch.zeros(n, dtype=torch.long)},
        str(folder / "tokens-rank0-00000.safetensors"),
    )
    shard = {"file": "tokens-rank0-00000.safetensors", "num_clips": n, "video_ids": [f"v{i}" for i in range(n)]}
    index = {"codebook_size": 16, "grid": [2, 2, 2], "tokenizer_hash": None, "num_clips": n, "shards": [shard]}
    (folder / "index-rank0.json").write_text(json.dumps(index))


def test_token_data_resume_mid_epoch_exactly(tmp_path):
    _write_token_split(tmp_path / "train", 10)
    _write_token_split(tmp_path / "val", 5)

    def make(**kwargs):
        return TokenDataModule(str(tmp_path), batch_size=3, seed=7, **kwargs)

    full = _check_resume(make, epoch=1, k=2)
    order = [v for b in full for v in b["video_id"]]
    assert sorted(order) == sorted(f"v{i}" for i in range(10)) and order != sorted(order)  # shuffled, complete
    first = [v for b in _epoch_with_state(_fit(make), 0, 1)[0] for v in b["video_id"]]
    assert first != order  # another epoch, another permutation


def _on_rank(dm: Any, rank: int, world: int = 2) -> Any:
    dm.trainer = SimpleNamespace(distributed_sampler_kwargs={"rank": rank, "num_replicas": world})
    return dm


def test_two_ranks_split_training_and_cover_evaluation_once(samples):
    one = {int(i): v for b in _epoch_with_state(_fit(samples), 1, 1)[0] for i, v in zip(b["index"], b["video"])}
    seen = []
    for rank in range(2):
        for batch in _epoch_with_state(_on_rank(_fit(samples), rank), 1, 1)[0]:
            for i, v in zip(batch["index"].tolist(), batch["video"]):
                assert torch.equal(v, one[i])  # a clip does not depend on the rank that reads it
                seen.append((rank, i))
    assert len(seen) == 8 and sorted(i for _, i in seen) == list(range(8))  # disjoint and complete
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedVideoWarning)
        evaluated = []
        for rank in range(2):
            dm = _on_rank(samples(test_crops=3, test_clips_per_video=2), rank)
            dm.setup("test")
            val = [i for b in dm.val_dataloader() for i in b["index"].tolist()]
            views = [
                (v, w)
                for b in dm.test_dataloader()
                for v, w in zip(b["video_index"].tolist(), b["view_index"].tolist())
            ]
            evaluated.append((val, views))
    assert sorted(evaluated[0][0] + evaluated[1][0]) == [0, 1, 2]  # 3 clips over 2 ranks: no padding repeat
    views = evaluated[0][1] + evaluated[1][1]
    assert sorted(views) == [(0, w) for w in range(6)]  # 2 clips × 3 crops, each once
