"""Video and image data: PyAV decoding, clip sampling, transforms, manifests, frame cache, clip and image
datasets, and DataModules (UCF-101, Kinetics, HMDB-51, Something-Something-v2, image folders, sample clips)."""

from .clips import VideoClipDataset, collate_clips
from .datamodule import ClipDataModule
from .decode import VideoDecodeError, VideoInfo, probe_video, read_frames, read_video
from .frame_cache import FrameCache
from .hmdb51 import HMDB51DataModule
from .image_folder import ImageDecodeError, ImageFolderDataModule, ImageFolderDataset, read_image
from .kinetics import KineticsDataModule
from .manifest import VideoEntry, VideoItem, build_manifest, manifest_path
from .samples import SampleClipsDataModule, sample_clip_dir
from .sampling import ClipSampler, SamplingMode, ShortClipPolicy
from .skips import MissingVideosWarning, SkipLog, SkippedFilesReport, SkippedVideoWarning
from .ssv2 import SomethingSomethingV2DataModule
from .transforms import ClipTransform
from .ucf101 import UCF101DataModule

__all__ = [
    "ClipDataModule",
    "ClipSampler",
    "ClipTransform",
    "FrameCache",
    "HMDB51DataModule",
    "ImageDecodeError",
    "ImageFolderDataModule",
    "ImageFolderDataset",
    "KineticsDataModule",
    "MissingVideosWarning",
    "SampleClipsDataModule",
    "SamplingMode",
    "ShortClipPolicy",
    "SkipLog",
    "SkippedFilesReport",
    "SkippedVideoWarning",
    "SomethingSomethingV2DataModule",
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
    "read_image",
    "read_video",
    "sample_clip_dir",
]
