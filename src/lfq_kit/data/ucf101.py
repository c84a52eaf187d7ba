"""UCF-101 (Soomro et al., arXiv 1212.0402): 13,320 videos of 101 actions, three official train/test folds.

Layout under ``root`` (the official archives, extracted side by side)::

    UCF-101/<Class>/v_<Class>_gXX_cYY.avi          XviD AVI, 320×240, 25 fps
    ucfTrainTestlist/classInd.txt                  "<1-based id> <Class>" per line
    ucfTrainTestlist/trainlist0{1,2,3}.txt         "<Class>/<file>.avi <1-based id>" per line
    ucfTrainTestlist/testlist0{1,2,3}.txt          "<Class>/<file>.avi" per line

Labels are 0-based in ``classInd.txt`` order. Names are matched case-insensitively, since the official files
disagree on case for one class (``HandstandPushups`` in the lists, ``HandStandPushups`` in file names).
Split 1 has 9,537 training and 3,783 test videos; validation and test both use the test list.
"""

from __future__ import annotations

import os
from pathlib import Path

from .datamodule import ClipDataModule
from .manifest import VideoItem

__all__ = ["UCF101DataModule", "read_class_index", "read_ucf_split"]

_VIDEOS = "UCF-101"
_LISTS = "ucfTrainTestlist"


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty lines with their 1-based line numbers (the official files use CRLF line ends)."""
    return [(n, line.strip()) for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]


def read_class_index(path: str | os.PathLike) -> list[str]:
    """Class names in label order from ``classInd.txt`` (lines ``<1-based id> <Class>``, ids 1…N in order).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a malformed line, or ids that are not 1, 2, …, N in order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"UCF-101 class index not found: {path} (expected lines '<1-based id> <ClassName>')")
    names = []
    for n, line in _lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(names) + 1:
            raise ValueError(f"{path}:{n}: expected '{len(names) + 1} <ClassName>', got {line!r}")
        names.append(parts[1])
    if not names:
        raise ValueError(f"{path} lists no classes")
    return names


def read_ucf_split(path: str | os.PathLike, class_names: list[str]) -> list[VideoItem]:
    """Items of a ``trainlist0k.txt`` / ``testlist0k.txt`` file, labelled by their class folder.

    A training line's own id must agree with the folder's class.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a malformed line, a class not in ``class_names``, or a disagreeing id.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"UCF-101 split file not found: {path} (expected lines '<Class>/<file>.avi[ <1-based id>]')"
        )
    labels = {name.lower(): i for i, name in enumerate(class_names)}
    items = []
    for n, line in _lines(path):
        parts = line.replace("\\", "/").split()
        if len(parts) not in (1, 2) or "/" not in parts[0] or (len(parts) == 2 and not parts[1].isdigit()):
            raise ValueError(f"{path}:{n}: expected '<Class>/<file>.avi[ <1-based id>]', got {line!r}")
        folder = parts[0].split("/")[0]
        label = labels.get(folder.lower())
        if label is None:
            raise ValueError(
                f"{path}:{n}: class {folder!r} is not in classInd.txt (its {len(class_names)} classes: "
                f"{', '.join(class_names[:5])}, ...)"
            )
        if len(parts) == 2 and int(parts[1]) != label + 1:
            raise ValueError(f"{path}:{n}: id {parts[1]} disagrees with class {folder!r}, which is id {label + 1}")
        items.append(VideoItem(parts[0], label))
    return items


def _resolve_case(video_dir: Path, items: list[VideoItem]) -> list[VideoItem]:
    """Replace each listed path by the on-disk path that matches it case-insensitively (one directory scan);
    paths with no match stay as listed (the manifest reports them as missing)."""
    on_disk: dict[str, str] = {}
    with os.scandir(video_dir) as classes:
        for folder in classes:
            if folder.is_dir():
                with os.scandir(folder.path) as files:
                    for f in files:
                        rel = f"{folder.name}/{f.name}"
                        on_disk.setdefault(rel.lower(), rel)
    return [VideoItem(f"{_VIDEOS}/{on_disk.get(it.path.lower(), it.path)}", it.label) for it in items]


class UCF101DataModule(ClipDataModule):
    """UCF-101 clips for tokenizer training, class-conditional generation and action recognition.

    ``num_classes`` and ``class_names`` are read from ``classInd.txt`` in ``__init__`` (LightningCLI can
    link them into a model); the split files are read in ``setup``. Training: one random clip per training
    video per epoch. Validation and test: ``clips_per_video`` evenly spaced clips per test-list video.

    Args:
        root: directory holding ``UCF-101/`` and ``ucfTrainTestlist/`` (see the module docstring).
        fold: official split, 1, 2 or 3.
        kwargs: the clip arguments of :class:`~lfq_kit.data.datamodule.ClipDataModule` (frames_per_clip,
            resolution, batch_size, ...); LightningCLI lists them under this class too.

    Raises:
        FileNotFoundError: ``root``, ``root/UCF-101``, ``classInd.txt`` or the fold's split files missing.
        ValueError: ``fold`` not in 1…3; malformed split files or unknown class names (in ``setup``).
    """

    name = "ucf101"

    def __init__(
        self,
        root: str,
        fold: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if fold not in (1, 2, 3):
            raise ValueError(f"UCF-101 fold must be 1, 2 or 3, got {fold}")
        self._root = Path(root).expanduser()
        self.fold = fold
        expected = f"expected {_VIDEOS}/<Class>/*.avi and {_LISTS}/{{classInd,trainlist0k,testlist0k}}.txt"
        if not self._root.is_dir():
            raise FileNotFoundError(f"UCF-101 root not found: {self._root} ({expected} inside it)")
        if not (self._root / _VIDEOS).is_dir():
            raise FileNotFoundError(f"UCF-101 video folder not found: {self._root / _VIDEOS} ({expected} under root)")
        lists = self._root / _LISTS
        self.class_names = read_class_index(lists / "classInd.txt")
        self.num_classes = len(self.class_names)
        self._split_files = (lists / f"trainlist0{fold}.txt", lists / f"testlist0{fold}.txt")
        for split in self._split_files:
            if not split.is_file():
                raise FileNotFoundError(f"UCF-101 split file for fold {fold} not found: {split}")

    @property
    def root(self) -> Path:
        return self._root

    def train_items(self) -> list[VideoItem]:
        return _resolve_case(self._root / _VIDEOS, read_ucf_split(self._split_files[0], self.class_names))

    def eval_items(self) -> list[VideoItem]:
        return _resolve_case(self._root / _VIDEOS, read_ucf_split(self._split_files[1], self.class_names))
