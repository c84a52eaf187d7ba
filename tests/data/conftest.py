"""Miniature datasets in their real on-disk formats, built once per session from the real sample clips
(and, for image folders, scikit-image's bundled photos).

UCF-101 tree: 4 classes × 3 videos of 36 frames (GOP 12; the Biking videos have B-frames, whose AVI
timestamps start at 1) and one 12-frame video; one bad file of each kind in fold 1's training list: empty,
truncated (the first half of a valid file), a text file named .avi, and a file whose frames 4-23 cannot be
decoded (the probe decodes frames 0 and 24-35 only, so only reading a clip finds it).

Kinetics, HMDB-51, Something-Something-v2 and ImageNet-style trees: see dataset_trees.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import dataset_trees
import numpy as np
import pytest
from video_fixtures import FRAMES, UCF_CLASSES, UCF_FOLDERS, break_frames, sample_clip, write_avi


@pytest.fixture(scope="session")
def source_frames() -> np.ndarray:
    """120 real frames of bikes.mp4 (640×272), the content of every miniature video."""
    with av.open(str(sample_clip("bikes.mp4"))) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 120:
                break
    return np.stack(frames)


@dataclass
class UcfTree:
    root: Path
    train1: list[tuple[str, int]]  # fold 1 training list (path, label), including the bad files
    test1: list[tuple[str, int]]
    bad: dict[str, str]  # path relative to UCF-101/ → kind
    corrupt_frames: str  # the file only clip decoding finds bad (relative to UCF-101/)
    short: str  # the 12-frame video


@pytest.fixture(scope="session")
def ucf_tree(tmp_path_factory, source_frames) -> UcfTree:
    root = tmp_path_factory.mktemp("ucf101")
    videos = root / "UCF-101"
    rel = lambda cls, g: f"{UCF_FOLDERS[cls]}/v_{UCF_FOLDERS[cls]}_g{g:02d}_c01.avi"  # noqa: E731
    good = {}
    for label, cls in enumerate(UCF_CLASSES):
        for k, g in enumerate((1, 2, 8)):
            offset = 7 * label + 28 * k  # different content per video
            good[rel(cls, g)] = label
            b_frames = 2 if cls == "Biking" else 0
            write_avi(videos / rel(cls, g), source_frames[offset : offset + FRAMES], b_frames=b_frames)
    short = rel("JumpRope", 5)
    write_avi(videos / short, source_frames[:12])
    good[short] = 3
    bad = {
        rel("Biking", 3): "empty",
        rel("Biking", 4): "truncated",
        rel("JumpRope", 3): "text",
        rel("ApplyEyeMakeup", 3): "corrupt frames",
    }
    (videos / rel("Biking", 3)).write_bytes(b"")
    valid = (videos / rel("Biking", 1)).read_bytes()
    (videos / rel("Biking", 4)).write_bytes(valid[: len(valid) // 2])
    (videos / rel("JumpRope", 3)).write_text("this is not a video\n" * 20)
    break_frames(videos / rel("ApplyEyeMakeup", 1), videos / rel("ApplyEyeMakeup", 3), range(4, 24))

    lists = root / "ucfTrainTestlist"
    lists.mkdir()
    crlf = lambda lines: "".join(line + "\r\n" for line in lines)  # noqa: E731  (the official files use CRLF)
    (lists / "classInd.txt").write_text(crlf(f"{i + 1} {c}" for i, c in enumerate(UCF_CLASSES)), newline="")

    def listed(path: str) -> str:  # the lists spell the class as classInd does
        folder, name = path.split("/")
        return f"{UCF_CLASSES[list(UCF_FOLDERS.values()).index(folder)]}/{name}"

    train_good = [(p, lab) for p, lab in good.items() if "_g08_" not in p]
    test = [(p, lab) for p, lab in good.items() if "_g08_" in p]
    bad_labels = {p: UCF_CLASSES.index(listed(p).split("/")[0]) for p in bad}
    train1 = train_good + list(bad_labels.items())
    (lists / "trainlist01.txt").write_text(crlf(f"{listed(p)} {lab + 1}" for p, lab in train1), newline="")
    (lists / "testlist01.txt").write_text(crlf(listed(p) for p, _ in test), newline="")
    # Fold 2: clean training list, a truncated file in the test list (evaluation must raise).
    (lists / "trainlist02.txt").write_text(crlf(f"{listed(p)} {lab + 1}" for p, lab in train_good), newline="")
    (lists / "testlist02.txt").write_text(
        crlf(listed(p) for p in [*(p for p, _ in test), rel("Biking", 4)]), newline=""
    )
    # Fold 3: the test list is missing.
    (lists / "trainlist03.txt").write_text(crlf(f"{listed(p)} {lab + 1}" for p, lab in train_good), newline="")
    return UcfTree(root, train1, test, bad, rel("ApplyEyeMakeup", 3), short)


@pytest.fixture(scope="session")
def kinetics_tree(tmp_path_factory, source_frames) -> dataset_trees.KineticsTree:
    return dataset_trees.build_kinetics(tmp_path_factory.mktemp("kinetics400"), source_frames)


@pytest.fixture(scope="session")
def hmdb_tree(tmp_path_factory, source_frames) -> dataset_trees.HmdbTree:
    return dataset_trees.build_hmdb(tmp_path_factory.mktemp("hmdb51"), source_frames)


@pytest.fixture(scope="session")
def ssv2_tree(tmp_path_factory, source_frames) -> dataset_trees.Ssv2Tree:
    codec = dataset_trees.webm_codec()
    if codec is None:
        pytest.skip("this PyAV build has no WebM encoder (libvpx-vp9 or libvpx), so no .webm test files can be made")
    return dataset_trees.build_ssv2(tmp_path_factory.mktemp("ssv2"), source_frames, codec)


@pytest.fixture(scope="session")
def image_tree(tmp_path_factory) -> dataset_trees.ImageTree:
    return dataset_trees.build_image_folder(tmp_path_factory.mktemp("imagenet"))
