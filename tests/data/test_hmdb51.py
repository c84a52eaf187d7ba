"""HMDB51DataModule on a miniature tree in the official layout (MPEG-4 AVI, split files with 0/1/2 ids):
classes before setup, the batch contract, exact labels per fold, and errors naming missing split files."""

import pytest
import torch
from dataset_trees import HMDB_CLASSES

from lfq_kit.data import HMDB51DataModule


def make(tree, tmp_path, **kwargs):
    args = dict(frames_per_clip=9, resolution=32, batch_size=3, num_workers=0, manifest_dir=str(tmp_path))
    return HMDB51DataModule(str(tree.root), **{**args, **kwargs})


@pytest.mark.parametrize("fold", [1, 2])
def test_folds_classes_lengths_and_labels(hmdb_tree, tmp_path, fold):
    dm = make(hmdb_tree, tmp_path, fold=fold, clips_per_video=2)
    assert dm.num_classes == 3 and dm.class_names == HMDB_CLASSES  # sorted split-file class names, before setup
    dm.setup("fit")
    train, test = hmdb_tree.roles[fold]["train"], hmdb_tree.roles[fold]["test"]
    assert len(dm.train_set) == 3 and len(dm.val_set) == 2 * 3  # the 0 ("unused") lines are left out
    assert [(e.video_id, e.label) for e in dm.train_set.entries] == train
    assert [(e.video_id, e.label) for e in dm.val_set.entries] == test
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (3, 3, 9, 32, 32) and batch["video"].dtype == torch.float32
    assert -1 <= batch["video"].min() and batch["video"].max() <= 1
    assert batch["label"].dtype == torch.int64 and sorted(batch["label"].tolist()) == [0, 1, 2]
    val = next(iter(dm.val_dataloader()))
    assert val["label"].tolist() == [0, 0, 1] and val["frame_indices"][:2, 0].tolist() == [0, 7]
    if fold == 1:
        assert val["video_id"][0] == "videos/brush_hair/Brushing_Hair_with_Beth_brush_hair_h_nm_np1_le_goo_0.avi"


def test_missing_split_files_and_folders_are_named(hmdb_tree, tmp_path):
    splits = hmdb_tree.root / "testTrainMulti_7030_splits"
    with pytest.raises(FileNotFoundError, match=rf"split file not found: {splits}/shoot_bow_test_split3\.txt"):
        make(hmdb_tree, tmp_path, fold=3)
    with pytest.raises(FileNotFoundError, match=r"HMDB-51 split folder not found: .*splits_v2"):
        make(hmdb_tree, tmp_path, split_dir="splits_v2")
    with pytest.raises(FileNotFoundError, match=r"HMDB-51 video folder not found: .*hmdb51_org"):
        make(hmdb_tree, tmp_path, video_dir="hmdb51_org")
    with pytest.raises(FileNotFoundError, match="HMDB-51 root not found"):
        HMDB51DataModule(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="fold must be 1, 2 or 3"):
        make(hmdb_tree, tmp_path, fold=0)
    (tmp_path / "videos").mkdir()
    (tmp_path / "testTrainMulti_7030_splits").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no HMDB-51 split files for fold 1 in .*<class>_test_split1\.txt"):
        HMDB51DataModule(str(tmp_path))


def test_malformed_split_line_names_file_and_line(tmp_path):
    (tmp_path / "videos/clap").mkdir(parents=True)
    (tmp_path / "testTrainMulti_7030_splits").mkdir()
    (tmp_path / "testTrainMulti_7030_splits/clap_test_split1.txt").write_text("a.avi 1 \nb.avi 3 \n")
    dm = HMDB51DataModule(str(tmp_path), manifest_dir=str(tmp_path))
    assert dm.class_names == ["clap"]
    with pytest.raises(ValueError, match=r"clap_test_split1\.txt:2: expected '<video>\.avi <0\|1\|2>', got 'b\.avi 3'"):
        dm.setup("fit")
