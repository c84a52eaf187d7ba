"""RetryingReader: the replace-on-failure loop shared by the clip and image datasets."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from lfq_kit.data import VideoDecodeError, VideoItem, build_manifest
from lfq_kit.data.clips import VideoClipDataset
from lfq_kit.data.image_folder import ImageFolderDataset
from lfq_kit.data.retry import Attempt, RetryingReader


class FakeFiles:
    """Index i reads file i // 2 (two samples per file); files in ``bad`` fail. Counts reads per file."""

    def __init__(self, bad: set[int]) -> None:
        self.bad = bad
        self.reads: Counter[int] = Counter()

    def __call__(self, index: int) -> Attempt:
        key = index // 2

        def read() -> dict:
            self.reads[key] += 1
            if key in self.bad:
                raise VideoDecodeError(f"/data/f{key}", f"broken {key}")
            return {"index": index}

        return Attempt(key, f"/data/f{key}", read)


def test_evaluation_takes_the_next_index_and_reports_each_skip() -> None:
    files = FakeFiles(bad={1, 2})
    reader = RetryingReader(train=False, on_error="skip", max_retries=10, noun="clips", files="videos")
    sample = reader(2, 8, files)  # 2, 3 (file 1), 4, 5 (file 2) fail; 6 (file 3) reads
    assert sample == {
        "index": 6,
        "skipped": ["/data/f1", "/data/f1", "/data/f2", "/data/f2"],
        "skip_reasons": ["broken 1", "broken 1", "broken 2", "broken 2"],
    }
    assert reader.known_bad == {}  # evaluation remembers nothing: it stays deterministic
    assert reader(2, 8, files)["index"] == 6 and files.reads[1] == 4
    assert reader(6, 8, FakeFiles(bad={3}))["index"] == 0  # 6, 7 (file 3) fail: wraps around to 0


def test_training_replaces_at_random_and_never_decodes_a_failed_file_twice() -> None:
    torch.manual_seed(0)
    files = FakeFiles(bad={0})
    reader = RetryingReader(train=True, on_error="skip", max_retries=10, noun="clips", files="videos")
    replacements = Counter()
    for _ in range(300):
        sample = reader(0, 6, files)
        assert sample["skipped"][0] == "/data/f0" and sample["index"] != 0
        replacements[sample["index"]] += 1
    assert files.reads[0] == 1 and reader.known_bad == {0: "broken 0"}  # remembered by key (file)
    # uniform over the other indices (index 1 is file 0 too, so it is skipped again and replaced)
    assert set(replacements) == {2, 3, 4, 5} and min(replacements.values()) > 50
    assert [reader.replacement(3, 1) for _ in range(3)] == [3, 3, 3]  # a single sample has no other


def test_giving_up_and_raising() -> None:
    files = FakeFiles(bad={0, 1, 2})
    reader = RetryingReader(train=False, on_error="skip", max_retries=3, noun="images", files="images")
    with pytest.raises(
        RuntimeError,
        match=r"^4 consecutive images failed to decode, e\.g\. /data/f1: broken 1; "
        r"too many unreadable images to skip$",
    ):
        reader(0, 6, files)
    strict = RetryingReader(train=False, on_error="raise", max_retries=3, noun="clips", files="videos")
    with pytest.raises(VideoDecodeError, match="broken 0"):
        strict(0, 6, files)
    with pytest.raises(ValueError, match="on_error must be 'skip' or 'raise', got 'ignore'"):
        RetryingReader(train=True, on_error="ignore", max_retries=3, noun="clips", files="videos")
    with pytest.raises(ValueError, match="max_retries must be an int >= 0, got -1"):
        RetryingReader(train=True, on_error="skip", max_retries=-1, noun="clips", files="videos")


def test_both_datasets_delegate_to_the_shared_reader(ucf_tree, image_tree, tmp_path) -> None:
    items = [VideoItem(p, 0) for p in image_tree.corrupt_train] + [VideoItem(image_tree.train[0][0], 1)]
    images = ImageFolderDataset(image_tree.root, items, resolution=16, train=False, on_error="skip", max_retries=2)
    assert isinstance(images.retry, RetryingReader) and not images.retry.train
    sample = images[0]  # the two unreadable images, then the readable one
    assert sample["index"] == 2 and sample["label"] == 1
    assert sample["skipped"] == [str(image_tree.root / p) for p in image_tree.corrupt_train]
    with pytest.raises(RuntimeError, match="^2 consecutive images failed to decode"):
        ImageFolderDataset(image_tree.root, items[:2], resolution=16, train=False, on_error="skip", max_retries=1)[0]
    corrupt = [VideoItem(f"UCF-101/{ucf_tree.corrupt_frames}", 0)]
    entries = build_manifest(ucf_tree.root, corrupt, "ucf101-retry", manifest_dir=tmp_path)
    clips = VideoClipDataset(entries, frames_per_clip=17, resolution=16, train=False, on_error="skip", max_retries=2)
    assert isinstance(clips.retry, RetryingReader) and (clips.retry.noun, clips.retry.files) == ("clips", "videos")
    with pytest.raises(RuntimeError, match="^3 consecutive clips failed to decode.*too many unreadable videos"):
        clips[0]
