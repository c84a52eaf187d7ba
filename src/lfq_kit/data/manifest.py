"""A dataset's manifest: every listed video with its label, frame count, rate and whether it can be read.

It is built once by probing each file (:func:`~lfq_kit.data.decode.probe_video`: container header, first
frame and, by default, the last group of pictures; no full decode) on a thread pool, and cached as JSON so
later runs only ``stat`` the files. Bad files (missing, empty, truncated, not a video) are therefore known
before training starts.

Cache file: ``<manifest_dir>/.lfq_kit_manifest-<hash>.json`` where ``<hash>`` names the dataset and its
resolved root. Without ``manifest_dir`` it goes in the dataset root when that is writable, else in the user
cache directory (``$LFQ_KIT_CACHE``, else ``$XDG_CACHE_HOME/lfq_kit``, else ``~/.cache/lfq_kit``).
A file is probed again when its size or modification time changed, when it is new, or when the cached probe
used a different ``verify_end``; records of files a later run does not list are kept (several splits and
folds share one cache file). Writes are atomic (temporary file + rename), so concurrent runs at worst
repeat each other's work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from ..io import write_atomic
from .decode import VideoDecodeError, VideoInfo, probe_video

__all__ = ["MISSING", "VideoEntry", "VideoItem", "build_manifest", "default_cache_dir", "manifest_path"]

log = logging.getLogger(__name__)

#: The :attr:`VideoEntry.reason` of a listed file that does not exist.
MISSING = "file not found"

_FORMAT = "lfq_kit.manifest"
_VERSION = 2  # 2: MPEG-TS frame counts (version 1 probed such files as 1 frame); older caches re-probe


@dataclass(frozen=True)
class VideoItem:
    """One video as a dataset's split files list it: ``path`` relative to the dataset root (POSIX
    separators; it is also the video's id) and its 0-based ``label``."""

    path: str
    label: int


@dataclass(frozen=True)
class VideoEntry:
    """A manifest row: a listed video with what probing it found.

    Attributes:
        path: absolute file path.
        label: 0-based class index.
        video_id: the path relative to the dataset root, as listed (stable across machines).
        info: probe result, None when the file cannot be read.
        reason: why it cannot be read (the decoder's message), empty when it can.
    """

    path: str
    label: int
    video_id: str
    info: VideoInfo | None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.info is not None


def default_cache_dir() -> Path:
    """``$LFQ_KIT_CACHE``, else ``$XDG_CACHE_HOME/lfq_kit``, else ``~/.cache/lfq_kit``."""
    if os.environ.get("LFQ_KIT_CACHE"):
        return Path(os.environ["LFQ_KIT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lfq_kit"


def manifest_path(
    root: str | os.PathLike, name: str, manifest_dir: str | os.PathLike | None = None, prefer_root: bool = True
) -> Path:
    """Where the manifest of dataset ``name`` under ``root`` is cached (see the module docstring).

    ``prefer_root=False`` skips the dataset root (for roots inside installed packages).
    """
    root = Path(root).resolve()
    digest = hashlib.sha1(f"{name}\0{root}".encode()).hexdigest()[:12]
    filename = f".lfq_kit_manifest-{name}-{digest}.json"
    if manifest_dir is not None:
        return Path(manifest_dir) / filename
    if prefer_root and os.access(root, os.W_OK):
        return root / filename
    return default_cache_dir() / filename


def _load(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable manifest cache %s (%s); rebuilding it", path, err)
        return {}
    if not isinstance(data, dict) or data.get("format") != _FORMAT or data.get("version") != _VERSION:
        return {}
    return data.get("files", {})


def _save(path: Path, root: Path, records: dict[str, dict]) -> None:
    payload = {"format": _FORMAT, "version": _VERSION, "root": str(root), "files": records}
    text = json.dumps(payload, separators=(",", ":"))
    try:  # shared: runs and ranks on one dataset write the same cache file
        write_atomic(path, lambda tmp: tmp.write_text(text), shared=True)
    except OSError as err:  # a read-only location costs a re-probe next time, nothing else
        log.warning("could not write the manifest cache %s (%s); videos will be probed again next run", path, err)


def _probe_record(path: Path, stat: os.stat_result, verify_end: bool) -> dict:
    record = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "verify_end": verify_end, "info": None, "reason": ""}
    try:
        record["info"] = asdict(probe_video(path, verify_end=verify_end))
    except VideoDecodeError as err:
        record["reason"] = err.reason
    return record


def build_manifest(
    root: str | os.PathLike,
    items: Sequence[VideoItem],
    name: str,
    manifest_dir: str | os.PathLike | None = None,
    prefer_root: bool = True,
    verify_end: bool = True,
    workers: int = 8,
) -> list[VideoEntry]:
    """One :class:`VideoEntry` per item, in order, probing only files the cache does not cover.

    Args:
        root: dataset root; item paths are relative to it.
        items: the videos to describe.
        name: the dataset's short name ("ucf101"), part of the cache file name.
        manifest_dir: directory of the cache file (None: see :func:`manifest_path`).
        prefer_root: allow caching in ``root`` when ``manifest_dir`` is None.
        verify_end: decode each file's last group of pictures to detect truncation (see
            :func:`~lfq_kit.data.decode.probe_video`).
        workers: probing threads (PyAV releases the GIL while demuxing and decoding).

    A missing file gets ``info=None`` and reason :data:`MISSING` ("file not found"); it is not cached.
    """
    root = Path(root).resolve()
    cache_file = manifest_path(root, name, manifest_dir, prefer_root)
    records = _load(cache_file)
    stats: dict[str, os.stat_result | None] = {}
    stale: list[str] = []
    for item in items:
        if item.path in stats:
            continue
        try:
            stats[item.path] = st = os.stat(root / item.path)
        except OSError:
            stats[item.path] = None
            continue
        cached = records.get(item.path)
        if (
            cached is None
            or cached.get("size") != st.st_size
            or cached.get("mtime_ns") != st.st_mtime_ns
            or cached.get("verify_end") != verify_end
        ):
            stale.append(item.path)
    if stale:
        log.info("probing %d video(s) under %s (cache: %s)", len(stale), root, cache_file)
        with ThreadPoolExecutor(max(1, min(workers, len(stale)))) as pool:
            fresh = pool.map(lambda p: _probe_record(root / p, stats[p], verify_end), stale)
            records.update(zip(stale, fresh))
        _save(cache_file, root, records)
    entries = []
    for item in items:
        path = str(root / item.path)
        if stats[item.path] is None:
            entries.append(VideoEntry(path, item.label, item.path, None, MISSING))
            continue
        record = records[item.path]
        info = VideoInfo(**record["info"]) if record["info"] is not None else None
        entries.append(VideoEntry(path, item.label, item.path, info, record["reason"]))
    return entries
