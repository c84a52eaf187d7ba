"""Video and image data: PyAV decoding, clip sampling, transforms, manifests, frame cache, clip and image
datasets, DataModules (UCF-101, Kinetics, HMDB-51, Something-Something-v2, image folders, sample clips, token
shards), seeded rank-aware resumable loaders, and video/grid writers."""

from ..seeding import DEFAULT_SEED, SampleKey, base_seed, sample_seed, seeded
from .camera_motion import CameraMotionDataModule, CameraMotionDataset
from .camera_paths import CAMERA_MOTIONS, camera_path, render_path
from .clips import VideoClipDataset, collate_clips
from .datamodule import ClipDataModule
from .decode import VideoDecodeError, VideoInfo, probe_video, read_frames, read_video
from .epoch_sampler import EpochSampler
from .frame_cache import FrameCache
from .hmdb51 import HMDB51DataModule
from .image_folder import ImageDecodeError, ImageFolderDataModule, ImageFolderDataset, read_image
from .kinetics import KineticsDataModule
from .loaders import SplitLoaders, build_loader, rank_and_world
from .manifest import VideoEntry, VideoItem, build_manifest, manifest_path
from .multiview import MultiViewClipDataset, collate_views, crop_view
from .samples import SampleClipsDataModule, sample_clip_dir
from .sampling import ClipSampler, SamplingMode, ShortClipPolicy
from .skips import GatheredSkips, MissingVideosWarning, SkipLog, SkippedFilesReport, SkippedVideoWarning, gather_skips
from .ssv2 import SomethingSomethingV2DataModule
from .tokens import TokenDataModule, TokenDataset, read_token_split
from .transforms import ClipTransform
from .ucf101 import UCF101DataModule
from .video_writer import to_uint8_frames, write_png_grid, write_video

__all__ = [
    "CAMERA_MOTIONS",
    "DEFAULT_SEED",
    "CameraMotionDataModule",
    "CameraMotionDataset",
    "ClipDataModule",
    "ClipSampler",
    "ClipTransform",
    "EpochSampler",
    "FrameCache",
    "GatheredSkips",
    "HMDB51DataModule",
    "ImageDecodeError",
    "ImageFolderDataModule",
    "ImageFolderDataset",
    "KineticsDataModule",
    "MissingVideosWarning",
    "MultiViewClipDataset",
    "SampleClipsDataModule",
    "SampleKey",
    "SamplingMode",
    "ShortClipPolicy",
    "SkipLog",
    "SkippedFilesReport",
    "SkippedVideoWarning",
    "SplitLoaders",
    "SomethingSomethingV2DataModule",
    "TokenDataModule",
    "TokenDataset",
    "UCF101DataModule",
    "VideoClipDataset",
    "VideoDecodeError",
    "VideoEntry",
    "VideoInfo",
    "VideoItem",
    "base_seed",
    "build_loader",
    "build_manifest",
    "camera_path",
    "collate_clips",
    "collate_views",
    "crop_view",
    "gather_skips",
    "manifest_path",
    "probe_video",
    "rank_and_world",
    "read_frames",
    "read_image",
    "read_token_split",
    "read_video",
    "render_path",
    "sample_clip_dir",
    "sample_seed",
    "seeded",
    "to_uint8_frames",
    "write_png_grid",
    "write_video",
]
