"""Something-Something-v2 (Goyal et al., ICCV 2017): 220,847 short clips of 174 template actions on everyday
objects ("Putting something on a surface").

Layout under ``root`` (the official download: the joined ``20bn-something-something-v2-??`` archives and the
label archive)::

    20bn-something-something-v2/<id>.webm       VP9 WebM, 240 pixels high, 12 fps
    labels/labels.json                          {"<template without brackets>": "<label id>", ...}
    labels/train.json                           [{"id": "78687", "label": "...", "template": "...",
    labels/validation.json                        "placeholders": [...]}, ...]

A clip's label is found by its ``template`` with the brackets removed ("Putting [something] on a surface"
→ "Putting something on a surface"), looked up in ``labels.json`` (exactly, else ignoring case). Labels are
``labels.json``'s ids (0…173), ``class_names`` its templates in id order. Validation and test both use
``validation.json`` (the official test set has no public labels).

Random horizontal flips are **off** by default: several classes say "left" or "right" (e.g. "Pushing
something from left to right"), so a mirrored clip would carry the wrong label.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .datamodule import ClipDataModule
from .manifest import VideoItem

__all__ = ["SomethingSomethingV2DataModule", "read_ssv2_labels", "template_key"]


def template_key(template: str) -> str:
    """The ``labels.json`` key of an annotation template: brackets removed, e.g. ``"[something]"`` →
    ``"something"``."""
    return template.replace("[", "").replace("]", "")


def _load_json(path: Path, what: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"Something-Something-v2 {what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None


def read_ssv2_labels(path: str | os.PathLike) -> list[str]:
    """Templates in label order from ``labels.json`` (``{template: "<id>"}`` with ids 0…N−1, each once).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: not a JSON object of template → integer id (string or number), or ids that are not
            0…N−1 exactly once.
    """
    path = Path(path)
    data = _load_json(path, "labels file")
    if not isinstance(data, dict) or not data:
        raise ValueError(
            f"{path}: expected a JSON object mapping templates to label ids, e.g. "
            '{"Putting something on a surface": "98"}'
        )
    by_id: dict[int, str] = {}
    for template, value in data.items():
        if not str(value).isdigit():
            raise ValueError(f"{path}: label id of {template!r} must be a non-negative integer, got {value!r}")
        if int(value) in by_id:
            raise ValueError(f"{path}: label id {value} is given to both {by_id[int(value)]!r} and {template!r}")
        by_id[int(value)] = template
    if sorted(by_id) != list(range(len(by_id))):
        gap = next(i for i in range(len(by_id)) if i not in by_id)
        raise ValueError(f"{path}: label ids must be 0…{len(by_id) - 1}, each once; {gap} is missing")
    return [by_id[i] for i in range(len(by_id))]


class SomethingSomethingV2DataModule(ClipDataModule):
    """Something-Something-v2 clips for action recognition (and tokenizer training).

    ``num_classes`` and ``class_names`` come from ``labels.json`` in ``__init__``; the annotation lists are
    read in ``prepare_data``/``setup``. Training: one random clip per training video per epoch. Validation
    and test: ``clips_per_video`` evenly spaced clips per validation video.

    Args:
        root: dataset directory (see the module docstring); the other paths are relative to it or absolute.
        video_dir: folder of the ``<id>.webm`` files.
        labels_file: template → label id JSON.
        train_annotations, val_annotations: lists of ``{"id", "label", "template", "placeholders"}``.
        random_flip: horizontal flips in training; off by default (left/right classes, see above).
        kwargs: the clip arguments of :class:`~lfq_kit.data.datamodule.ClipDataModule` (frames_per_clip,
            resolution, batch_size, ...); LightningCLI lists them under this class too.

    Raises:
        FileNotFoundError: ``root``, the video folder, ``labels.json`` or an annotation file is missing.
        ValueError: malformed JSON; an entry without ``id`` or ``template``; a template that is not in
            ``labels.json`` (the message names the file, the entry and the template; in ``setup``).
    """

    name = "ssv2"

    def __init__(
        self,
        root: str,
        video_dir: str = "20bn-something-something-v2",
        labels_file: str = "labels/labels.json",
        train_annotations: str = "labels/train.json",
        val_annotations: str = "labels/validation.json",
        random_flip: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(random_flip=random_flip, **kwargs)
        self.save_hyperparameters()
        self._root = Path(root).expanduser()
        if not self._root.is_dir():
            raise FileNotFoundError(f"Something-Something-v2 root not found: {self._root}")
        self._videos = self._root / video_dir
        if not self._videos.is_dir():
            raise FileNotFoundError(
                f"Something-Something-v2 video folder not found: {self._videos} (expected <id>.webm files inside it)"
            )
        self._prefix = os.path.relpath(self._videos, self._root).replace(os.sep, "/")
        self._annotations = {"train": self._root / train_annotations, "val": self._root / val_annotations}
        for split, path in self._annotations.items():
            if not path.is_file():
                raise FileNotFoundError(
                    f"Something-Something-v2 {split} annotations not found: {path} "
                    '(expected a JSON list of {"id", "label", "template", "placeholders"})'
                )
        self._labels_file = self._root / labels_file
        self.class_names = read_ssv2_labels(self._labels_file)
        self.num_classes = len(self.class_names)
        self._ids = {name: i for i, name in enumerate(self.class_names)}
        self._ids_folded = {name.casefold(): i for i, name in enumerate(self.class_names)}
        self._items: dict[str, list[VideoItem]] = {}

    @property
    def root(self) -> Path:
        return self._root

    def _label(self, path: Path, k: int, entry: dict) -> int:
        key = template_key(str(entry["template"]))
        label = self._ids.get(key, self._ids_folded.get(key.casefold()))
        if label is None:
            raise ValueError(
                f"{path}: entry {k} (id {entry['id']}): template {entry['template']!r} → {key!r} is "
                f"not a key of {self._labels_file}"
            )
        return label

    def _split(self, split: str) -> list[VideoItem]:
        if split not in self._items:
            path = self._annotations[split]
            data = _load_json(path, f"{split} annotations")
            if not isinstance(data, list):
                raise ValueError(f"{path}: expected a JSON list of clips, got a {type(data).__name__}")
            items = []
            for k, entry in enumerate(data):
                if not isinstance(entry, dict) or "id" not in entry or "template" not in entry:
                    raise ValueError(f"{path}: entry {k} needs an 'id' and a 'template', got {str(entry)[:200]}")
                items.append(VideoItem(f"{self._prefix}/{entry['id']}.webm", self._label(path, k, entry)))
            self._items[split] = items
        return self._items[split]

    def train_items(self) -> list[VideoItem]:
        return self._split("train")

    def eval_items(self) -> list[VideoItem]:
        return self._split("val")
