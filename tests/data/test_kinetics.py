"""KineticsDataModule on a miniature Kinetics-400 tree (H.264 MP4, official CSVs, VideoMAE lists): classes
before setup, the batch contract, exact labels, missing clips left out with one warning, layout variants,
and errors naming the file, line or path."""

import warnings

import pytest
import torch
from dataset_trees import KINETICS_CLASSES

from lfq_kit.data import KineticsDataModule, MissingVideosWarning


def make(tree, tmp_path, **kwargs):
    args = dict(frames_per_clip=9, resolution=32, batch_size=3, num_workers=0, manifest_dir=str(tmp_path))
    return KineticsDataModule(str(tree.root), **{**args, **kwargs})


def check_batch(batch, size, frames, resolution):
    video = batch["video"]
    assert video.shape == (size, 3, frames, resolution, resolution) and video.dtype == torch.float32
    assert -1 <= video.min() and video.max() <= 1
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (size,)


def test_csv_classes_batches_and_one_missing_clip_warning_per_split(kinetics_tree, tmp_path):
    dm = make(kinetics_tree, tmp_path)
    assert dm.annotation_format == "csv"
    assert dm.num_classes == 3 and dm.class_names == KINETICS_CLASSES  # sorted CSV labels, before setup
    with pytest.warns(MissingVideosWarning) as record:
        dm.setup("fit")
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert messages[0].startswith("3 of the 9 training videos listed are missing under")
    assert all(stem in messages[0] for stem in kinetics_tree.missing_train)
    assert messages[1].startswith("1 of the 4 evaluation videos listed are missing")
    assert sorted(dm.missing["training"]) == sorted(
        f"train/{label}/{stem}.mp4"
        for label, stem in zip(("abseiling", "zumba", "air drumming"), kinetics_tree.missing_train)
    )
    # Present clips only, in CSV order, found in label folders, the underscore folder and the flat layout.
    assert [e.video_id for e in dm.train_set.entries] == [p for p, _ in kinetics_tree.train]
    assert [e.label for e in dm.train_set.entries] == [lab for _, lab in kinetics_tree.train] == [2, 0, 1, 1, 2, 0]
    assert len(dm.train_set) == 6 and len(dm.val_set) == 3
    batch = next(iter(dm.train_dataloader()))
    check_batch(batch, 3, 9, 32)
    by_id = dict(kinetics_tree.train)
    assert batch["label"].tolist() == [by_id[v] for v in batch["video_id"]]
    val = next(iter(dm.val_dataloader()))
    check_batch(val, 3, 9, 32)
    assert val["label"].tolist() == [1, 0, 2] and val["video_id"] == [p for p, _ in kinetics_tree.val]
    with warnings.catch_warnings():  # a second setup builds nothing and warns nothing
        warnings.simplefilter("error")
        dm.setup("fit")


def test_video_list_format_with_relative_and_absolute_paths(kinetics_tree, tmp_path):
    dm = make(
        kinetics_tree,
        tmp_path,
        train_annotations="annotations/train_list.txt",
        val_annotations=str(kinetics_tree.root / "annotations/val_list.txt"),
    )
    assert dm.annotation_format == "list"  # auto-detected: not .csv, no youtube_id header
    assert dm.num_classes == 3 and dm.class_names == ["0", "1", "2"]  # largest training id + 1
    with pytest.warns(MissingVideosWarning, match="1 of the 7 training videos listed are missing"):
        dm.setup("fit")
    # Absolute paths under the root become root-relative ids, like the relative ones.
    assert [e.video_id for e in dm.train_set.entries] == [p for p, _ in kinetics_tree.train]
    assert [e.label for e in dm.train_set.entries] == [lab for _, lab in kinetics_tree.train]
    assert [e.label for e in dm.val_set.entries] == [1, 0, 2]
    check_batch(next(iter(dm.train_dataloader())), 3, 9, 32)


def test_class_list_fixes_the_order(kinetics_tree, tmp_path):
    dm = make(kinetics_tree, tmp_path, class_list="classes.txt")
    assert dm.class_names == ["zumba", "abseiling", "air drumming"]
    with pytest.warns(MissingVideosWarning):
        dm.setup("validate")
    assert dm.train_set is None and [e.label for e in dm.val_set.entries] == [2, 1, 0]
    forced = make(
        kinetics_tree,
        tmp_path,
        annotation_format="list",
        train_annotations="annotations/train_list.txt",
        val_annotations="annotations/val_list.txt",
        class_list="classes.txt",
    )
    assert forced.class_names == ["zumba", "abseiling", "air drumming"]


def write_kinetics(root, train_csv, val_csv="label,youtube_id,time_start,time_end,split\nzumba,x,0,10,val\n"):
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "train").mkdir(exist_ok=True)
    (root / "val").mkdir(exist_ok=True)
    (root / "annotations/train.csv").write_text(train_csv)
    (root / "annotations/val.csv").write_text(val_csv)


def test_errors_name_the_file_line_and_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="Kinetics root not found: .*nowhere"):
        KineticsDataModule(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"training annotations not found: .*annotations/train\.csv"):
        KineticsDataModule(str(tmp_path))
    header = "label,youtube_id,time_start,time_end,split\n"
    write_kinetics(tmp_path, header + "zumba,abc,0,10,train\n", header + "zumba,x,0,10,val\nyoga,y,0,10,val\n")
    with pytest.raises(ValueError, match=r"val\.csv:3: label 'yoga' is not a label of the training CSV"):
        KineticsDataModule(str(tmp_path))
    write_kinetics(tmp_path, "label,youtube,start,end\nzumba,abc,0,10\n")
    with pytest.raises(
        ValueError,
        match=r"train\.csv:1: expected a header with the columns "
        r"label,youtube_id,time_start,time_end",
    ):
        KineticsDataModule(str(tmp_path))
    write_kinetics(tmp_path, header + "zumba,abc,zero,10,train\n")
    with pytest.raises(ValueError, match=r"train\.csv:2: time_start and time_end must be numbers"):
        KineticsDataModule(str(tmp_path))
    write_kinetics(tmp_path, header + "zumba,abc,0,10,train\n")
    (tmp_path / "val").rmdir()
    with pytest.raises(FileNotFoundError, match=r"evaluation clip directory not found: .*val"):
        KineticsDataModule(str(tmp_path))
    (tmp_path / "annotations/list.txt").write_text("train/zumba/abc.mp4 0\ntrain/zumba/def.mp4\n")
    with pytest.raises(ValueError, match=r"list\.txt:2: expected '<path> <0-based label id>'"):
        KineticsDataModule(
            str(tmp_path), train_annotations="annotations/list.txt", val_annotations="annotations/list.txt"
        )
    with pytest.raises(ValueError, match="mix formats"):
        KineticsDataModule(str(tmp_path), val_annotations="annotations/list.txt")


def test_all_clips_missing_is_an_error_not_a_skip(tmp_path):
    header = "label,youtube_id,time_start,time_end,split\n"
    write_kinetics(tmp_path, header + "zumba,abc,0,10,train\nzumba,def,3,13,train\n")
    dm = KineticsDataModule(str(tmp_path), manifest_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"none of the 2 training videos exist under .*'train/zumba/abc_000000"):
        dm.setup("fit")
