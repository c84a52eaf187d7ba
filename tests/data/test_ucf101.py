"""UCF101DataModule on a miniature tree in the official layout and format: the batch contract, labels,
lengths, errors for a wrong layout, and skip accounting across DataLoader worker processes."""

import warnings

import pytest
import torch
from video_fixtures import UCF_CLASSES, TinyVideoAutoencoder, quiet_trainer

from lfq_kit.data import SkippedFilesReport, SkippedVideoWarning, UCF101DataModule, VideoDecodeError


def make(tree, tmp_path, **kwargs):
    args = dict(frames_per_clip=9, resolution=32, batch_size=4, num_workers=0, manifest_dir=str(tmp_path))
    return UCF101DataModule(str(tree.root), **{**args, **kwargs})


def test_batch_contract_and_labels(ucf_tree, tmp_path):
    dm = make(ucf_tree, tmp_path, clips_per_video=2)
    assert dm.num_classes == 4 and dm.class_names == UCF_CLASSES  # known before setup
    with pytest.warns(SkippedVideoWarning):
        dm.setup("fit")
    assert len(dm.train_set) == len(ucf_tree.train1) - 3  # 3 known-bad files left out
    assert len(dm.val_set) == 2 * len(ucf_tree.test1)
    batch = next(iter(dm.train_dataloader()))
    assert batch["video"].shape == (4, 3, 9, 32, 32) and batch["video"].dtype == torch.float32
    assert -1 <= batch["video"].min() and batch["video"].max() <= 1
    assert batch["label"].dtype == torch.int64 and batch["label"].shape == (4,)
    folder_label = {c.lower(): i for i, c in enumerate(UCF_CLASSES)}
    assert batch["label"].tolist() == [folder_label[v.split("/")[1].lower()] for v in batch["video_id"]]
    val = next(iter(dm.val_dataloader()))
    assert val["label"].tolist() == [0, 0, 1, 1]  # test list order, 2 clips per video, classInd labels
    assert val["frame_indices"][:2, 0].tolist() == [0, 27]  # first and last possible start of 36 frames


def test_class_name_case_mismatch_resolves_to_files_on_disk(ucf_tree, tmp_path):
    dm = make(ucf_tree, tmp_path)
    items = dm.train_items()
    handstand = [it for it in items if it.label == UCF_CLASSES.index("HandstandPushups")]
    assert handstand and all(it.path.startswith("UCF-101/HandStandPushups/v_HandStandPushups_") for it in handstand)
    assert all((ucf_tree.root / it.path).is_file() for it in handstand)


def test_evaluation_raises_for_a_bad_test_file(ucf_tree, tmp_path):
    with pytest.raises(VideoDecodeError, match="v_Biking_g04_c01.avi: truncated"):
        make(ucf_tree, tmp_path, fold=2).setup("validate")
    dm = make(ucf_tree, tmp_path, fold=2, eval_on_error="skip")
    with pytest.warns(SkippedVideoWarning, match="v_Biking_g04_c01.avi"):
        dm.setup("validate")
    assert len(dm.val_set) == len(ucf_tree.test1) and dm.train_set is None


def test_layout_errors_name_the_path(ucf_tree, tmp_path):
    with pytest.raises(FileNotFoundError, match="UCF-101 root not found: .*nowhere"):
        UCF101DataModule(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"video folder not found: .*UCF-101"):
        UCF101DataModule(str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"testlist03\.txt"):
        make(ucf_tree, tmp_path, fold=3)
    with pytest.raises(ValueError, match="fold must be 1, 2 or 3"):
        make(ucf_tree, tmp_path, fold=4)
    (tmp_path / "UCF-101").mkdir()
    with pytest.raises(FileNotFoundError, match=r"classInd\.txt"):
        UCF101DataModule(str(tmp_path))


def write_lists(root, train_lines, test_lines=("ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",)):
    (root / "UCF-101").mkdir()
    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES)))
    (lists / "trainlist01.txt").write_text("\n".join(train_lines) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test_lines) + "\n")


def test_unknown_class_and_wrong_id_are_reported_with_the_line(tmp_path):
    write_lists(tmp_path, ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1", "Fencing/v_Fencing_g01_c01.avi 5"])
    dm = UCF101DataModule(str(tmp_path), manifest_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"trainlist01\.txt:2: class 'Fencing' is not in classInd\.txt"):
        dm.setup("fit")
    (tmp_path / "ucfTrainTestlist/trainlist01.txt").write_text("Biking/v_Biking_g01_c01.avi 3\n")
    with pytest.raises(ValueError, match=r"trainlist01\.txt:1: id 3 disagrees with class 'Biking', which is id 2"):
        dm.setup("fit")


def test_a_root_without_the_listed_videos_is_an_error_not_a_skip(tmp_path):
    write_lists(tmp_path, ["ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 1"])
    with pytest.raises(FileNotFoundError, match="none of the 1 training videos exist under"):
        UCF101DataModule(str(tmp_path), manifest_dir=str(tmp_path)).setup("fit")


def test_an_empty_split_file_is_an_error_that_names_the_split(tmp_path):
    write_lists(tmp_path, [])
    with pytest.raises(ValueError, match=r"the training split under .* lists no video"):
        UCF101DataModule(str(tmp_path), manifest_dir=str(tmp_path)).setup("fit")


def test_skips_in_worker_processes_are_warned_once_and_counted_per_epoch(ucf_tree, tmp_path, caplog):
    # 17-frame clips of the 36-frame corrupt file always include one of its unreadable frames 4-23.
    dm = make(ucf_tree, tmp_path, frames_per_clip=17, resolution=16, batch_size=5, num_workers=2)
    report = SkippedFilesReport()
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=0, callbacks=[report])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(TinyVideoAutoencoder(), datamodule=dm)
    corrupt = str(ucf_tree.root / "UCF-101" / ucf_tree.corrupt_frames)
    runtime = [w for w in caught if w.category is SkippedVideoWarning and "skipped unreadable" in str(w.message)]
    assert len(runtime) == 1 and corrupt in str(runtime[0].message) and "Invalid data" in str(runtime[0].message)
    assert report.history == [{corrupt: 1}, {corrupt: 1}]
    assert dm.skip_log.total == 2 and len(dm.skip_log.excluded) == 3
    assert trainer.callback_metrics["data/skipped_clips"] == 1.0
    summaries = [r.getMessage() for r in caplog.records if "unreadable file(s)" in r.getMessage()]
    assert len(summaries) == 2 and summaries[1].startswith("epoch 1: skipped 1 clip(s) from 1 unreadable file(s)")
    assert corrupt in summaries[1] and "3 unreadable file(s) were left out" in summaries[1]


def test_predict_after_fit_on_the_same_datamodule(ucf_tree, tmp_path):
    # trainer.fit(...) then trainer.predict(...) with one datamodule: setup("predict") must still build its sets.
    dm = make(ucf_tree, tmp_path, eval_on_error="skip", frames_per_clip=5, resolution=16)
    with pytest.warns(SkippedVideoWarning):
        dm.setup("fit")
        dm.setup("predict")
    loaders = dm.predict_dataloader()
    assert [len(loader.dataset) for loader in loaders] == [len(ucf_tree.train1) - 3, len(ucf_tree.test1)]
