"""Kinetics-400/600 (Kay et al., arXiv 1705.06950; Carreira et al., arXiv 1808.01340): 10-second YouTube clips
of 400 or 600 actions, listed in annotation CSVs or in VideoMAE-style list files.

Annotations, chosen by ``annotation_format`` (``"auto"``: a ``.csv`` file, or any file whose first line
names a ``youtube_id`` column, is a CSV; anything else is a list):

- ``"csv"``: the official files, a header ``label,youtube_id,time_start,time_end,split[,is_cc]`` and one row
  per clip. The clip is found under the split directory by its file name
  ``<youtube_id>_<time_start:06d>_<time_end:06d>.<ext>``, in a ``<label>/`` folder (as listed, or with spaces
  written as underscores) or directly in the split directory (the flat layout of some mirrors); ``<ext>`` is
  any of ``.mp4 .mkv .webm .avi .mov``. The ``split`` and ``is_cc`` columns are not used: every row of a file
  belongs to the split the file is given for.
- ``"list"``: VideoMAE's lists, ``<path> <0-based label id>`` per line; ``<path>`` is relative to ``root``
  or absolute and may contain spaces (the id is the last field).

Classes: by default the sorted unique label names of the training CSV (Python string order, so
``"abseiling"`` is 0 in Kinetics-400), or for lists the ids ``0 … max id`` (names are the ids as strings).
A ``class_list`` file (one class name per line, label = line number − 1) fixes the order and the names
instead. Validation labels must be among the classes.

Missing clips are normal (every copy lacks some of the listed YouTube videos): they are left out with one
:class:`~lfq_kit.data.skips.MissingVideosWarning` per split that gives their number and a few names, and
listed in :attr:`KineticsDataModule.missing`. Only a split none of whose clips exist is an error.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .datamodule import ClipDataModule
from .manifest import VideoItem

__all__ = ["AnnotationFormat", "KineticsDataModule", "KineticsClip", "read_kinetics_csv", "read_video_list"]

AnnotationFormat = Literal["auto", "csv", "list"]

_CSV_COLUMNS = ("label", "youtube_id", "time_start", "time_end")
_VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".avi", ".mov")


@dataclass(frozen=True)
class KineticsClip:
    """One row of a Kinetics CSV: the class name, the clip's file stem and the CSV line it came from."""

    label: str
    stem: str  # <youtube_id>_<time_start:06d>_<time_end:06d>
    line: int


def _resolve(root: Path, path: str) -> Path:
    return Path(path).expanduser() if os.path.isabs(os.path.expanduser(path)) else root / path


def _first_line(path: Path) -> str:
    with open(path, newline="", encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                return line
    return ""


def detect_format(path: Path) -> Literal["csv", "list"]:
    """``"csv"`` for a ``.csv`` file or one whose first line names a ``youtube_id`` column, else ``"list"``."""
    if path.suffix.lower() == ".csv" or "youtube_id" in _first_line(path):
        return "csv"
    return "list"


def read_kinetics_csv(path: str | os.PathLike) -> list[KineticsClip]:
    """Rows of a Kinetics annotation CSV (``label,youtube_id,time_start,time_end[,split[,is_cc]]``).

    Times may be written as integers or as floats with a zero fraction (``3`` or ``3.0``).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a header without the four needed columns, or a row with an empty field or a
            non-numeric time; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Kinetics annotation CSV not found: {path} "
            f"(expected a header {','.join(_CSV_COLUMNS)},split[,is_cc] and one row per clip)"
        )
    clips = []
    with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: tolerate a byte-order mark
        reader = csv.DictReader(f)
        header = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = header
        if not set(_CSV_COLUMNS) <= set(header):
            raise ValueError(
                f"{path}:1: expected a header with the columns {','.join(_CSV_COLUMNS)} "
                f"(then split[,is_cc]), got {','.join(header) or 'an empty file'}"
            )
        for row in reader:
            line = reader.line_num
            values = {k: (row.get(k) or "").strip() for k in _CSV_COLUMNS}
            empty = [k for k, v in values.items() if not v]
            if empty:
                raise ValueError(f"{path}:{line}: empty {', '.join(empty)} in {row}")
            try:
                start, end = (float(values[k]) for k in ("time_start", "time_end"))
            except ValueError:
                raise ValueError(
                    f"{path}:{line}: time_start and time_end must be numbers, got "
                    f"{values['time_start']!r}, {values['time_end']!r}"
                ) from None
            if not (start.is_integer() and end.is_integer()):
                raise ValueError(f"{path}:{line}: time_start and time_end must be whole seconds, got {start}, {end}")
            stem = f"{values['youtube_id']}_{int(start):06d}_{int(end):06d}"
            clips.append(KineticsClip(values["label"], stem, line))
    if not clips:
        raise ValueError(f"{path} lists no clips")
    return clips


def read_video_list(path: str | os.PathLike) -> list[tuple[str, int, int]]:
    """``(path, label id, line)`` for each line ``<path> <0-based label id>`` of a VideoMAE-style list.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: a line without a path and a non-negative integer id (the message names file and line).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"video list not found: {path} (expected lines '<path> <0-based label id>')")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(maxsplit=1)
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(f"{path}:{n}: expected '<path> <0-based label id>', got {line.strip()!r}")
        rows.append((parts[0].replace("\\", "/"), int(parts[1]), n))
    if not rows:
        raise ValueError(f"{path} lists no videos")
    return rows


def read_class_list(path: Path) -> list[str]:
    """Class names, one per line in label order; blank lines are ignored.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: no names, or a name listed twice.
    """
    if not path.is_file():
        raise FileNotFoundError(f"class list not found: {path} (expected one class name per line, in label order)")
    names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path} lists no classes")
    seen: set[str] = set()
    for n, name in enumerate(names, 1):
        if name in seen:
            raise ValueError(f"{path}: class {name!r} is listed twice (second time as class {n})")
        seen.add(name)
    return names


def _index_clips(split_dir: Path) -> dict[str, str]:
    """File stem → path relative to ``split_dir`` of every video file in it or one folder below it.

    A stem found in several places keeps the first one in sorted order (deterministic).
    """
    index: dict[str, str] = {}
    folders = []
    with os.scandir(split_dir) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.is_dir():
                folders.append(entry)
            elif os.path.splitext(entry.name)[1].lower() in _VIDEO_EXTENSIONS:
                index.setdefault(os.path.splitext(entry.name)[0], entry.name)
    for folder in folders:
        with os.scandir(folder.path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                stem, ext = os.path.splitext(entry.name)
                if ext.lower() in _VIDEO_EXTENSIONS:
                    index.setdefault(stem, f"{folder.name}/{entry.name}")
    return index


class KineticsDataModule(ClipDataModule):
    """Kinetics-400/600 clips for tokenizer training, frame prediction and action recognition.

    ``num_classes`` and ``class_names`` are known after ``__init__``, which reads both annotation files
    (a few hundred thousand rows take well under a second); the split directories are scanned once, in
    ``prepare_data``/``setup``. Training: one random clip per present training video per epoch. Validation
    and test: ``clips_per_video`` evenly spaced clips per present validation video.

    Args:
        root: dataset directory; relative annotation, class-list and video paths are relative to it.
        train_annotations: the training CSV or list (relative to ``root`` or absolute).
        val_annotations: the validation CSV or list (e.g. ``annotations/test.csv`` with ``val_dir: test``
            to evaluate on the test split).
        annotation_format: ``"auto"``, ``"csv"`` or ``"list"`` (see the module docstring).
        train_dir, val_dir: directories of the training and validation clips (CSV format only), relative to
            ``root`` or absolute.
        class_list: file with one class name per line in label order (None: see the module docstring).
        kwargs: the clip arguments of :class:`~lfq_kit.data.datamodule.ClipDataModule` (frames_per_clip,
            resolution, batch_size, ...); LightningCLI lists them under this class too.

    Raises:
        FileNotFoundError: ``root``, an annotation file, the class list or (CSV format) a split directory is
            missing.
        ValueError: a malformed annotation file; a validation label that is not a class (the message names
            file, line and label); a CSV label not in ``class_list``.
    """

    name = "kinetics"
    drop_missing = True

    def __init__(
        self,
        root: str,
        train_annotations: str = "annotations/train.csv",
        val_annotations: str = "annotations/val.csv",
        annotation_format: AnnotationFormat = "auto",
        train_dir: str = "train",
        val_dir: str = "val",
        class_list: str | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        if annotation_format not in ("auto", "csv", "list"):
            raise ValueError(f"annotation_format must be 'auto', 'csv' or 'list', got {annotation_format!r}")
        self._root = Path(root).expanduser()
        if not self._root.is_dir():
            raise FileNotFoundError(f"Kinetics root not found: {self._root}")
        files = {
            "training": _resolve(self._root, train_annotations),
            "evaluation": _resolve(self._root, val_annotations),
        }
        for split, path in files.items():
            if not path.is_file():
                raise FileNotFoundError(
                    f"Kinetics {split} annotations not found: {path} (a CSV "
                    f"'{','.join(_CSV_COLUMNS)},split' or a list '<path> <label id>')"
                )
        formats = {
            split: annotation_format if annotation_format != "auto" else detect_format(path)
            for split, path in files.items()
        }
        if formats["training"] != formats["evaluation"]:
            raise ValueError(
                f"the Kinetics annotations mix formats: {files['training']} is a {formats['training']}, "
                f"{files['evaluation']} a {formats['evaluation']}; give both in one format"
            )
        self.annotation_format: Literal["csv", "list"] = formats["training"]
        self._files = files
        self._dirs = {"training": _resolve(self._root, train_dir), "evaluation": _resolve(self._root, val_dir)}
        given = read_class_list(_resolve(self._root, class_list)) if class_list is not None else None
        self._items: dict[str, list[VideoItem]] = {}
        if self.annotation_format == "csv":
            self._rows = {split: read_kinetics_csv(path) for split, path in files.items()}
            self.class_names = given or sorted({clip.label for clip in self._rows["training"]})
            self._labels = {name: i for i, name in enumerate(self.class_names)}
            for split, rows in self._rows.items():
                self._check_labels(split, rows, f"in {class_list}" if given else "a label of the training CSV")
                if not self._dirs[split].is_dir():
                    raise FileNotFoundError(
                        f"Kinetics {split} clip directory not found: {self._dirs[split]} "
                        f"(expected <label>/<youtube_id>_<start:06d>_<end:06d>.mp4 inside it)"
                    )
        else:
            self._lists = {split: read_video_list(path) for split, path in files.items()}
            top = max(label for _, label, _ in self._lists["training"])
            self.class_names = given or [str(i) for i in range(top + 1)]
            for split, rows in self._lists.items():
                bad = next(((lab, n) for _, lab, n in rows if lab >= len(self.class_names)), None)
                if bad is not None:
                    raise ValueError(
                        f"{files[split]}:{bad[1]}: label id {bad[0]} is not below the "
                        f"{len(self.class_names)} classes"
                        + (f" of {class_list}" if given else " (the training list's largest id + 1)")
                    )
        self.num_classes = len(self.class_names)

    def _check_labels(self, split: str, rows: list[KineticsClip], what: str) -> None:
        unknown = next((clip for clip in rows if clip.label not in self._labels), None)
        if unknown is not None:
            shown = ", ".join(repr(c) for c in self.class_names[:3]) + (", ..." if len(self.class_names) > 3 else "")
            raise ValueError(
                f"{self._files[split]}:{unknown.line}: label {unknown.label!r} is not {what} "
                f"(the {len(self.class_names)} classes: {shown})"
            )

    @property
    def root(self) -> Path:
        return self._root

    def _split_items(self, split: str) -> list[VideoItem]:
        if split in self._items:
            return self._items[split]
        if self.annotation_format == "list":
            items = []
            for path, label, _ in self._lists[split]:
                full, root = os.path.abspath(_resolve(self._root, path)), os.path.abspath(self._root)
                if full.startswith(root + os.sep):  # ids relative to the root where possible: stable across machines
                    full = os.path.relpath(full, root)
                items.append(VideoItem(full.replace(os.sep, "/"), label))
        else:
            split_dir = self._dirs[split]
            prefix = os.path.relpath(split_dir, self._root).replace(os.sep, "/")
            on_disk = _index_clips(split_dir)
            # Not on disk: keep the canonical <label>/<stem>.mp4 path; the manifest reports it missing.
            items = [
                VideoItem(f"{prefix}/{on_disk.get(c.stem, f'{c.label}/{c.stem}.mp4')}", self._labels[c.label])
                for c in self._rows[split]
            ]
        self._items[split] = items
        return items

    def train_items(self) -> list[VideoItem]:
        return self._split_items("training")

    def eval_items(self) -> list[VideoItem]:
        return self._split_items("evaluation")
