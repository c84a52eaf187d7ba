"""HMDB-51 (Kuehne et al., ICCV 2011): about 6,800 clips of 51 actions from films and web videos, three official
train/test splits.

Layout under ``root`` (the official ``hmdb51_org.rar``, whose per-class archives unpack to class folders,
and ``test_train_splits.rar``)::

    <video_dir>/<class>/<video>.avi                    DivX AVI, 240 pixels high, 30 fps
    <split_dir>/<class>_test_split{1,2,3}.txt          "<video>.avi <0|1|2>" per line

with ``video_dir = "videos"`` and ``split_dir = "testTrainMulti_7030_splits"`` by default. In a split file,
1 marks a training video, 2 a test video and 0 a video the split does not use (70 / 30 videos per class
and split). Classes are the sorted class names of the fold's split file names (``brush_hair`` is 0,
``wave`` is 50); the class folders must agree. Validation and test both use the test videos.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .datamodule import ClipDataModule
from .manifest import VideoItem

__all__ = ["HMDB51DataModule", "read_hmdb_split"]

_SPLIT_FILE = re.compile(r"^(?P<cls>.+)_test_split(?P<fold>[123])\.txt$")
_SPLIT_IDS = {"0": "unused", "1": "train", "2": "test"}


def read_hmdb_split(path: str | os.PathLike) -> dict[str, list[str]]:
    """Video file names of one ``<class>_test_split<k>.txt`` by role: ``{"train": [...], "test": [...],
    "unused": [...]}``, in file order.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a line that is not ``<video> <0|1|2>`` (the message names file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HMDB-51 split file not found: {path} (expected lines '<video>.avi <0|1|2>')")
    roles: dict[str, list[str]] = {"train": [], "test": [], "unused": []}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or parts[1] not in _SPLIT_IDS:
            raise ValueError(f"{path}:{n}: expected '<video>.avi <0|1|2>', got {line.strip()!r}")
        roles[_SPLIT_IDS[parts[1]]].append(parts[0])
    return roles


class HMDB51DataModule(ClipDataModule):
    """HMDB-51 clips for action recognition (and tokenizer training).

    ``num_classes`` and ``class_names`` come from the fold's split file names in ``__init__``; the split
    files are read in ``prepare_data``/``setup``. Training: one random clip per training video per epoch.
    Validation and test: ``clips_per_video`` evenly spaced clips per test video.

    Args:
        root: dataset directory (see the module docstring).
        fold: official split, 1, 2 or 3.
        video_dir: folder of the class folders of videos, relative to ``root`` or absolute.
        split_dir: folder of the split files, relative to ``root`` or absolute.
        kwargs: the clip arguments of :class:`~lfq_kit.data.datamodule.ClipDataModule` (frames_per_clip,
            resolution, batch_size, ...); LightningCLI lists them under this class too.

    Raises:
        FileNotFoundError: ``root``, the video or split folder, every split file of the fold, or the split
            file of a class that has a video folder is missing (the message names the missing file).
        ValueError: ``fold`` not in 1…3; a malformed split file (in ``setup``).
    """

    name = "hmdb51"

    def __init__(
        self,
        root: str,
        fold: int = 1,
        video_dir: str = "videos",
        split_dir: str = "testTrainMulti_7030_splits",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if fold not in (1, 2, 3):
            raise ValueError(f"HMDB-51 fold must be 1, 2 or 3, got {fold}")
        self.fold = fold
        self._root = Path(root).expanduser()
        expected = f"expected {video_dir}/<class>/<video>.avi and {split_dir}/<class>_test_split{{1,2,3}}.txt"
        if not self._root.is_dir():
            raise FileNotFoundError(f"HMDB-51 root not found: {self._root} ({expected} inside it)")
        videos, splits = self._root / video_dir, self._root / split_dir
        for folder, what in ((videos, "video"), (splits, "split")):
            if not folder.is_dir():
                raise FileNotFoundError(f"HMDB-51 {what} folder not found: {folder} ({expected} under the root)")
        found = {}
        for name in os.listdir(splits):
            match = _SPLIT_FILE.match(name)
            if match and int(match["fold"]) == fold:
                found[match["cls"]] = splits / name
        if not found:
            raise FileNotFoundError(
                f"no HMDB-51 split files for fold {fold} in {splits} "
                f"(expected <class>_test_split{fold}.txt for each class)"
            )
        for folder in sorted(os.listdir(videos)):
            if (videos / folder).is_dir() and folder not in found:
                raise FileNotFoundError(
                    f"HMDB-51 split file not found: {splits / f'{folder}_test_split{fold}.txt'} "
                    f"(the class folder {videos / folder} has videos)"
                )
        self._prefix = os.path.relpath(videos, self._root).replace(os.sep, "/")  # item paths: <prefix>/<class>/<file>
        self.class_names = sorted(found)
        self.num_classes = len(self.class_names)
        self._split_files = [found[c] for c in self.class_names]
        self._items: dict[str, list[VideoItem]] | None = None

    @property
    def root(self) -> Path:
        return self._root

    def _split(self, role: str) -> list[VideoItem]:
        if self._items is None:
            self._items = {"train": [], "test": []}
            for label, (cls, path) in enumerate(zip(self.class_names, self._split_files)):
                roles = read_hmdb_split(path)
                for r in ("train", "test"):
                    self._items[r] += [VideoItem(f"{self._prefix}/{cls}/{video}", label) for video in roles[r]]
        return self._items[role]

    def train_items(self) -> list[VideoItem]:
        return self._split("train")

    def eval_items(self) -> list[VideoItem]:
        return self._split("test")
