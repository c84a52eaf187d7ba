"""Video data: PyAV decoding, clip sampling, transforms, manifests, clip datasets and DataModules."""

from .clips import VideoClipDataset, collate_clips
from .datamodule import ClipDataModule
from .decode import VideoDecodeError, VideoInfo, probe_video, read_frames
from .manifest import VideoEntry, VideoItem, build_manifest, manifest_path
from .samples import SampleClipsDataModule, sample_clip_dir
from .sampling import ClipSampler, SamplingMode, ShortClipPolicy
from .skips import SkipLog, SkippedFilesReport, SkippedVideoWarning
from .transforms import ClipTransform
from .ucf101 import UCF101DataModule

__all__ = [
    "ClipDataModule",
    "ClipSampler",
    "ClipTransform",
    "SampleClipsDataModule",
    "SamplingMode",
    "ShortClipPolicy",
    "SkipLog",
    "SkippedFilesReport",
    "SkippedVideoWarning",
    "UCF101DataModule",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoEntry",
    "VideoInfo",
    "VideoItem",
    "build_manifest",
    "collate_clips",
    "manifest_path",
    "probe_video",
    "read_frames",
    "sample_clip_dir",
]
