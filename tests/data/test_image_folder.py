"""ImageFolderDataModule on an ImageNet-style tree of real photos (JPEG, PNG, grayscale PNG) with unreadable
images: the one-frame batch contract, exact labels, transforms, and the bad-file policy (invariant 14) with
skips counted in the main process across a worker process."""

import warnings

import pytest
import torch
from dataset_trees import IMAGE_CLASSES

from lfq_kit.data import (
    ImageDecodeError,
    ImageFolderDataModule,
    SkippedVideoWarning,
    VideoDecodeError,
    read_image,
)


def make(tree, **kwargs):
    return ImageFolderDataModule(str(tree.root), **{**dict(resolution=32, batch_size=4, num_workers=0), **kwargs})


def test_batch_contract_lengths_and_labels(image_tree):
    dm = make(image_tree)
    assert dm.num_classes == 3 and dm.class_names == IMAGE_CLASSES and dm.frames_per_clip == 1  # before setup
    dm.setup("fit")
    assert len(dm.train_set) == len(image_tree.train) + 2 == 9  # readable + 2 unreadable; README.txt ignored
    assert len(dm.val_set) == 3
    readable = [(it.path, it.label) for it in dm.train_set.items if it.path not in image_tree.corrupt_train]
    assert readable == image_tree.train
    val = next(iter(dm.val_dataloader()))
    assert val["video"].shape == (3, 3, 1, 32, 32) and val["video"].dtype == torch.float32
    assert -1 <= val["video"].min() and val["video"].max() <= 1
    assert val["label"].dtype == torch.int64 and val["label"].tolist() == [0, 1, 2]
    assert val["video_id"] == [p for p, _ in image_tree.val] and val["frame_indices"].tolist() == [[0]] * 3
    # Evaluation: the centered square of the image, resized (a photo, not a constant).
    assert val["video"].std() > 0.1


def test_training_transforms(image_tree):
    dm = make(image_tree, crop_scale=(0.2, 0.5), resolution=48)
    dm.setup("fit")
    gray = next(i for i, it in enumerate(dm.train_set.items) if it.path.endswith("_gray.png"))
    sample = dm.train_set[gray]
    assert sample["video"].shape == (3, 1, 48, 48) and sample["label"] == 2 and not sample["skipped"]
    assert torch.equal(sample["video"][0], sample["video"][1])  # grayscale → RGB with equal channels
    crops = torch.stack([dm.train_set[0]["video"] for _ in range(4)])
    assert not torch.equal(crops[0], crops[1])  # random resized crops differ
    with pytest.raises(ValueError, match="crop_scale must satisfy"):
        make(image_tree, crop_scale=(0.5, 1.5))


def test_unreadable_images_are_skipped_in_training_and_counted_in_the_main_process(image_tree):
    dm = make(image_tree, batch_size=9, num_workers=1)
    dm.setup("fit")
    bad = sorted(str(image_tree.root / p) for p in image_tree.corrupt_train)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # two epochs, each with a fresh worker process
            for batch in dm.train_dataloader():
                batch = dm.on_after_batch_transfer(batch, 0)
                assert batch["video"].shape == (9, 3, 1, 32, 32)
            # Each bad image counted in its epoch (more than once if a replacement drew it again).
            assert sorted(dm.skip_log.pop_epoch()) == bad
    assert sorted(dm.skip_log.reasons) == bad and dm.skip_log.total >= 4
    assert "truncated" in dm.skip_log.reasons[bad[0]]
    named = [str(w.message) for w in caught if w.category is SkippedVideoWarning]
    assert len(named) == 2 and all(any(p in m for m in named) for p in bad)  # once per file


def test_evaluation_raises_naming_the_file_unless_skipping(image_tree):
    dm = make(image_tree, val_dir="val_bad")
    dm.setup("validate")
    with pytest.raises(ImageDecodeError, match=r"cannot read image .*val_bad/coffee/coffee_truncated\.jpg"):
        next(iter(dm.val_dataloader()))
    skipping = make(image_tree, val_dir="val_bad", eval_on_error="skip")
    skipping.setup("validate")
    batch = next(iter(skipping.val_dataloader()))
    assert batch["label"].tolist() == [0, 0] and batch["skipped"] == [str(image_tree.root / image_tree.corrupt_val)]


def test_read_image_errors_and_layout_errors(image_tree, tmp_path):
    with pytest.raises(VideoDecodeError, match=r"cannot read image .*coffee_0009_text\.JPEG"):
        read_image(image_tree.root / image_tree.corrupt_train[1])
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="empty.png"):
        read_image(tmp_path / "empty.png")
    assert read_image(image_tree.root / image_tree.train[0][0]).shape == (300, 451, 3)
    with pytest.raises(FileNotFoundError, match="image folder root not found: .*nowhere"):
        ImageFolderDataModule(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"image folder not found: .*/train \(expected train/<class>/<image>"):
        ImageFolderDataModule(str(tmp_path))
    (tmp_path / "train/dog").mkdir(parents=True)
    (tmp_path / "val/wolf").mkdir(parents=True)
    dm = ImageFolderDataModule(str(tmp_path))
    with pytest.raises(ValueError, match=r"no images .* in the class folders of .*train"):
        dm.setup("fit")
    with pytest.raises(ValueError, match=r"class folder .*val/wolf is not a training class \(1 classes: dog\)"):
        dm.setup("validate")
