"""SomethingSomethingV2DataModule on a miniature tree in the official layout (VP9 WebM, labels.json with
bracket-free templates, train/validation JSON lists): classes before setup, exact labels from templates,
the batch contract, flips off by default, and errors naming unknown templates and missing paths."""

import json

import pytest
import torch
from dataset_trees import SSV2_TEMPLATES

from lfq_kit.data import SomethingSomethingV2DataModule


def make(tree, tmp_path, **kwargs):
    args = dict(frames_per_clip=9, resolution=32, batch_size=4, num_workers=0, manifest_dir=str(tmp_path))
    return SomethingSomethingV2DataModule(str(tree.root), **{**args, **kwargs})


def test_labels_from_templates_and_batch_contract(ssv2_tree, tmp_path):
    dm = make(ssv2_tree, tmp_path)
    assert dm.num_classes == 3 and dm.class_names == SSV2_TEMPLATES  # labels.json id order, before setup
    dm.setup("fit")
    assert [(e.video_id, e.label) for e in dm.train_set.entries] == ssv2_tree.train
    assert [e.label for e in dm.train_set.entries] == [0, 2, 1, 0]
    assert [e.label for e in dm.val_set.entries] == [1, 2] and len(dm.val_set) == 2
    assert dm.train_set.entries[0].info.codec == ("vp9" if ssv2_tree.codec == "libvpx-vp9" else "vp8")
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 3, 9, 32, 32) and batch["video"].dtype == torch.float32
    assert -1 <= batch["video"].min() and batch["video"].max() <= 1
    labels = dict(ssv2_tree.train)
    assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == [labels[v] for v in batch["video_id"]]
    assert next(iter(dm.val_dataloader()))["label"].tolist() == [1, 2]


def test_random_flip_is_off_by_default(ssv2_tree, tmp_path):
    dm = make(ssv2_tree, tmp_path)
    assert dm.random_flip is False
    dm.setup("fit")
    assert dm.train_set.transform.flip_p == 0.0  # "left to right" stays left to right
    flipping = make(ssv2_tree, tmp_path, random_flip=True)
    flipping.setup("fit")
    assert flipping.train_set.transform.flip_p == 0.5


def test_unknown_template_is_named(ssv2_tree, tmp_path):
    root = tmp_path / "ssv2"
    (root / "20bn-something-something-v2").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "labels/labels.json").write_text((ssv2_tree.root / "labels/labels.json").read_text())
    entries = [
        {
            "id": "1",
            "label": "putting a pen on a table",
            "template": "Putting [something] on a surface",
            "placeholders": ["a pen"],
        },
        {
            "id": "2",
            "label": "spinning a top",
            "template": "Spinning [something] that quickly stops spinning",
            "placeholders": ["a top"],
        },
    ]
    (root / "labels/train.json").write_text(json.dumps(entries))
    (root / "labels/validation.json").write_text(json.dumps(entries[:1]))
    dm = SomethingSomethingV2DataModule(str(root), manifest_dir=str(tmp_path))
    with pytest.raises(
        ValueError,
        match=r"train\.json: entry 1 \(id 2\): template 'Spinning \[something\] that "
        r"quickly stops spinning' → 'Spinning something that quickly stops "
        r"spinning' is not a key of .*labels\.json",
    ):
        dm.setup("fit")
    (root / "labels/train.json").write_text(json.dumps([{"id": "1", "label": "x"}]))
    with pytest.raises(ValueError, match=r"train\.json: entry 0 needs an 'id' and a 'template'"):
        dm.setup("fit")


def test_missing_paths_and_bad_label_files_are_named(ssv2_tree, tmp_path):
    with pytest.raises(FileNotFoundError, match="Something-Something-v2 root not found"):
        SomethingSomethingV2DataModule(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"video folder not found: .*20bn-something-something-v2"):
        SomethingSomethingV2DataModule(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"val annotations not found: .*labels/test\.json"):
        make(ssv2_tree, tmp_path, val_annotations="labels/test.json")
    (tmp_path / "videos").mkdir()
    (tmp_path / "labels").mkdir()
    for name in ("train.json", "validation.json"):
        (tmp_path / "labels" / name).write_text("[]")
    with pytest.raises(FileNotFoundError, match=r"labels file not found: .*labels/labels\.json"):
        SomethingSomethingV2DataModule(str(tmp_path), video_dir="videos")
    (tmp_path / "labels/labels.json").write_text(json.dumps({"Holding something": "0", "Tearing something": "2"}))
    with pytest.raises(ValueError, match=r"labels\.json: label ids must be 0…1, each once; 1 is missing"):
        SomethingSomethingV2DataModule(str(tmp_path), video_dir="videos")
