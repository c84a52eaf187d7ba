"""Images in class folders (the ImageNet / ``ImageFolder`` layout) as one-frame videos.

Layout under ``root``::

    <train_dir>/<class>/<image>        train_dir = "train"
    <val_dir>/<class>/<image>          val_dir = "val"; every class folder must also be a training class

Images are the files (also in subfolders of a class folder) whose extension is one of ``.jpg .jpeg .png .bmp
.webp .ppm .tif .tiff`` (any case: ImageNet writes ``.JPEG``); other files are ignored. Classes are the
sorted training class folder names (Python string order), so ``n01440764`` is 0 in ImageNet.

Images are decoded with Pillow (a dependency of torchvision, which timm needs) and converted to RGB
(grayscale, palette, CMYK and alpha images included). Each becomes a one-frame clip through the same
:class:`~lfq_kit.data.transforms.ClipTransform` as videos: the largest square (random position in training,
centered in evaluation) resized to ``resolution`` (bilinear, antialiased), or in training with
``crop_scale`` a random resized crop; horizontal flip with p = 0.5 in training.

Bad files: an image that cannot be decoded (truncated, corrupt, empty, not an image) follows the video
datasets' runtime policy (docs/data.md). Training replaces it by another random image, does not decode it
again in that worker, and reports it in the batch's ``skipped`` / ``skip_reasons`` lists; the DataModule's
:class:`~lfq_kit.data.skips.SkipLog` warns once per file and counts in the main process, so counts are right
with any ``num_workers``. Evaluation raises :class:`ImageDecodeError` naming the file, or with
``eval_on_error="skip"`` takes the next image. Images are not probed up front (ImageNet has 1.28 M).

Training order and augmentation are seeded and resumable like the video modules' (:mod:`lfq_kit.data.loaders`,
:mod:`lfq_kit.seeding`): a training image's crop and flip are a function of (base seed, epoch, index).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..seeding import SampleKey, seeded, split_key
from .decode import VideoDecodeError
from .loaders import SplitLoaders
from .manifest import VideoItem
from .retry import Attempt, OnError, RetryingReader
from .skips import SkipLog
from .transforms import ClipTransform

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageDecodeError",
    "ImageFolderDataModule",
    "ImageFolderDataset",
    "list_image_folder",
    "read_image",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")

# What Pillow raises for unreadable images: OSError (also "image file is truncated" and
# UnidentifiedImageError), ValueError, SyntaxError (some broken PNGs), DecompressionBombError.
_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class ImageDecodeError(VideoDecodeError):
    """An image file could not be read. A :class:`~lfq_kit.data.decode.VideoDecodeError`, so code that
    handles unreadable videos handles images too.

    Attributes:
        path: the file.
        reason: what went wrong, usually Pillow's message.
    """

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        super().__init__(path, reason)
        self.args = (f"cannot read image {self.path}: {reason}",)


def read_image(path: str | os.PathLike) -> torch.Tensor:
    """Decode an image file to RGB: uint8 ``(H, W, 3)``.

    Raises:
        ImageDecodeError: the file is missing, empty, truncated, corrupt or not an image.
    """
    try:
        with Image.open(path) as image:
            rgb = np.array(image.convert("RGB"))
    except _IMAGE_ERRORS as err:
        raise ImageDecodeError(path, str(err) or type(err).__name__) from err
    return torch.from_numpy(rgb)


def list_image_folder(root: Path, split_dir: str, classes: Sequence[str]) -> list[VideoItem]:
    """Images under ``root/split_dir/<class>/`` as items (path relative to ``root``, label = position in
    ``classes``), class by class, files in sorted order.

    Raises:
        ValueError: a class folder that is not in ``classes``, or no image at all.
    """
    labels = {name: i for i, name in enumerate(classes)}
    directory = root / split_dir
    folders = sorted(e.name for e in os.scandir(directory) if e.is_dir())
    unknown = [f for f in folders if f not in labels]
    if unknown:
        raise ValueError(
            f"class folder {directory / unknown[0]} is not a training class "
            f"({len(classes)} classes: {', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''})"
        )
    items = []
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(directory / folder):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root).replace(os.sep, "/")
            items += [
                VideoItem(f"{rel}/{name}", labels[folder])
                for name in sorted(filenames)
                if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
            ]
    if not items:
        raise ValueError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {directory}")
    return items


class ImageFolderDataset(Dataset):
    """One-frame clips of images: each item is a dict like
    :class:`~lfq_kit.data.clips.VideoClipDataset`'s: ``video`` float32 ``(3, 1, resolution, resolution)`` in
    [−1, 1], ``label`` int, ``index`` int, ``frame_indices`` int64 ``(1,)`` (always 0), ``video_id`` str
    (path relative to ``root``), ``skipped`` and ``skip_reasons`` (lists of str). Batch with
    :func:`~lfq_kit.data.clips.collate_clips`.

    Args:
        root: directory the item paths are relative to.
        items: the images and their labels.
        resolution: output height and width.
        train: random crop position (or random resized crop), random flip, random replacement of bad files.
        flip_p: horizontal flip probability in training.
        crop_scale: random resized crop area range in training (None: largest square), see
            :class:`~lfq_kit.data.transforms.ClipTransform`.
        on_error: ``"skip"`` or ``"raise"`` for unreadable images; None: skip in training, raise otherwise.
        max_retries: consecutive unreadable images tolerated for one item before giving up.

    Attributes:
        retry: the :class:`~lfq_kit.data.retry.RetryingReader` replacing images that fail to decode.

    Raises:
        ValueError: no items, invalid ``on_error`` or ``max_retries``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        items: Sequence[VideoItem],
        resolution: int = 128,
        train: bool = True,
        flip_p: float = 0.5,
        crop_scale: tuple[float, float] | None = None,
        on_error: OnError | None = None,
        max_retries: int = 10,
    ) -> None:
        if not items:
            raise ValueError("ImageFolderDataset needs at least one image")
        self.root = Path(root)
        self.items = list(items)
        self.train = train
        self.retry = RetryingReader(
            train, on_error or ("skip" if train else "raise"), max_retries, noun="images", files="images"
        )
        self.on_error: OnError = self.retry.on_error
        self.max_retries = max_retries
        self.transform = ClipTransform(resolution, train=train, flip_p=flip_p, crop_scale=crop_scale)

    def __len__(self) -> int:
        return len(self.items)

    def _attempt(self, index: int) -> Attempt:
        item = self.items[index]
        path = str(self.root / item.path)

        def read() -> dict[str, Any]:
            return {
                "video": self.transform(read_image(path)[None]),
                "label": item.label,
                "index": index,
                "frame_indices": torch.zeros(1, dtype=torch.long),
                "video_id": item.path,
            }

        return Attempt(index, path, read)

    def __getitem__(self, key: int | SampleKey) -> dict[str, Any]:
        """The item of an ``int`` index (random choices from torch's global generator) or of a
        :class:`~lfq_kit.seeding.SampleKey` (crop, flip and replacements drawn under the key's seed).

        Raises:
            IndexError: the index is outside ``[0, len)``.
            TypeError: ``key`` is neither an int nor a ``SampleKey``.
        """
        index, seed = split_key(key)
        if not 0 <= index < len(self):
            raise IndexError(f"image index {index} out of range for {len(self)} images")
        with seeded(seed):
            return self.retry(index, len(self), self._attempt)


class ImageFolderDataModule(SplitLoaders):
    """ImageNet-style class folders as batches of one-frame videos, for image tokenizers (MAGVIT-v2's
    ImageNet setting) and class-conditional generation.

    Batches are those of the video DataModules with ``T = 1``: ``video`` float32 ``(B, 3, 1, R, R)`` in
    [−1, 1] (``R = resolution``), ``label`` int64 ``(B,)``, ``index``, ``frame_indices`` (zeros, ``(B, 1)``),
    ``video_id``, ``skipped``, ``skip_reasons``. ``num_classes`` and ``class_names`` are set in ``__init__``
    (one directory listing); the images are listed in ``setup``.

    Args:
        root: dataset directory (see the module docstring).
        train_dir, val_dir: folders of the training and validation class folders, relative to ``root`` or
            absolute.
        resolution: output height and width in pixels.
        batch_size: images per batch (per device).
        num_workers: DataLoader worker processes.
        crop_scale: training crop: None (default) takes the largest square at a random position (a
            short-side resize and random crop along the long side); ``[low, high]`` takes an Inception-style
            random resized crop covering that fraction of the area, e.g. ``[0.08, 1.0]``.
        random_flip: horizontal flips (p = 0.5) in training.
        eval_on_error: ``"raise"`` (default) or ``"skip"`` for unreadable images in validation and test.
            Training always skips them.
        pin_memory: pin batches in page-locked memory (only when CUDA is available).
        persistent_workers: keep workers alive between epochs (only with ``num_workers > 0``).
        seed: base seed of the training order and augmentation (None: ``seed_everything``'s seed, else 0; see
            :func:`~lfq_kit.seeding.base_seed`).

    Attributes:
        num_classes, class_names: the sorted training class folders.
        frames_per_clip: always 1.
        skip_log: the :class:`~lfq_kit.data.skips.SkipLog` fed by every batch (``on_after_batch_transfer``);
            :class:`~lfq_kit.data.skips.SkippedFilesReport` reads it.

    Raises:
        FileNotFoundError: ``root``, the training or validation folder is missing, or the training folder
            has no class folders.
        ValueError: invalid sizes; in ``setup``, a validation class that is not a training class, or a split
            without images.
    """

    frames_per_clip = 1

    def __init__(
        self,
        root: str,
        train_dir: str = "train",
        val_dir: str = "val",
        resolution: int = 128,
        batch_size: int = 32,
        num_workers: int = 4,
        crop_scale: tuple[float, float] | None = None,
        random_flip: bool = True,
        eval_on_error: OnError = "raise",
        pin_memory: bool = True,
        persistent_workers: bool = False,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if batch_size < 1 or num_workers < 0 or resolution < 1:
            raise ValueError(
                f"batch_size and resolution must be >= 1 and num_workers >= 0, got "
                f"{batch_size}, {resolution}, {num_workers}"
            )
        if crop_scale is not None and not 0 < crop_scale[0] <= crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale}")
        self._root = Path(root).expanduser()
        self.train_dir, self.val_dir = train_dir, val_dir
        self.resolution = resolution
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.crop_scale = None if crop_scale is None else (float(crop_scale[0]), float(crop_scale[1]))
        self.random_flip = random_flip
        self.eval_on_error = eval_on_error
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.seed = seed
        expected = f"expected {train_dir}/<class>/<image> and {val_dir}/<class>/<image>"
        if not self._root.is_dir():
            raise FileNotFoundError(f"image folder root not found: {self._root} ({expected} inside it)")
        for split in (train_dir, val_dir):
            if not (self._root / split).is_dir():
                raise FileNotFoundError(f"image folder not found: {self._root / split} ({expected} under the root)")
        self.class_names = sorted(e.name for e in os.scandir(self._root / train_dir) if e.is_dir())
        if not self.class_names:
            raise FileNotFoundError(f"no class folders in {self._root / train_dir} ({expected})")
        self.num_classes = len(self.class_names)
        self.skip_log = SkipLog()
        self.train_set: ImageFolderDataset | None = None
        self.val_set: ImageFolderDataset | None = None

    @property
    def root(self) -> Path:
        return self._root

    def setup(self, stage: str | None = None) -> None:
        if stage in ("fit", None) and self.train_set is None:
            items = list_image_folder(self._root, self.train_dir, self.class_names)
            self.train_set = ImageFolderDataset(
                self._root,
                items,
                self.resolution,
                train=True,
                flip_p=0.5 if self.random_flip else 0.0,
                crop_scale=self.crop_scale,
            )
        if stage in ("fit", "validate", "test", None) and self.val_set is None:
            items = list_image_folder(self._root, self.val_dir, self.class_names)
            self.val_set = ImageFolderDataset(
                self._root, items, self.resolution, train=False, on_error=self.eval_on_error
            )
