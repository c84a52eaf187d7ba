"""Writing videos and frame grids: frame count, size, pixel values after an H.264 round trip, atomic files."""

import av
import numpy as np
import pytest
import torch
from PIL import Image
from video_fixtures import decode_all, sample_clip

from lfq_kit.data import write_png_grid, write_video
from lfq_kit.data.video_writer import to_uint8_frames


def _clip(frames: int = 9, size: int = 32) -> torch.Tensor:
    real = decode_all(sample_clip("bikes.mp4"))[:frames, :size, :size]  # (T, H, W, 3) uint8
    return torch.from_numpy(np.ascontiguousarray(real)).permute(3, 0, 1, 2).float() / 127.5 - 1


def test_uint8_conversion_is_exact_on_the_pixel_grid():
    pixels = torch.arange(256, dtype=torch.float32).view(1, 1, 1, 256).expand(3, 1, 1, 256) / 127.5 - 1
    assert np.array_equal(to_uint8_frames(pixels)[0, 0, :, 0], np.arange(256))


def test_video_round_trips_through_h264(tmp_path):
    clip = _clip()
    path = write_video(tmp_path / "clip.mp4", clip, fps=10)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 32, 32)
        assert float(stream.average_rate) == 10
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert decoded.shape == (9, 32, 32, 3)
    mse = np.mean((decoded.astype(np.float64) - to_uint8_frames(clip).astype(np.float64)) ** 2)
    assert 10 * np.log10(255**2 / mse) > 30  # crf 18 on real frames
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary file left


def test_odd_sizes_keep_their_size_and_grids_have_a_row_per_video(tmp_path):
    path = write_video(tmp_path / "odd.mp4", _clip(5, 31)[:, :, :, :29])
    with av.open(str(path)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (29, 31)
        assert container.streams.video[0].codec_context.pix_fmt == "yuv444p"  # yuv420p needs even sizes
    grid = write_png_grid(tmp_path / "grid.png", torch.stack([_clip(5, 16), _clip(5, 16)]))
    assert Image.open(grid).size == (5 * 16, 2 * 16)


def test_bad_shapes_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\(3, T, H, W\)"):
        write_video(tmp_path / "x.mp4", torch.zeros(1, 3, 5, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        write_png_grid(tmp_path / "x.png", torch.zeros(3, 5, 8, 8))


def test_the_container_follows_the_final_suffix_not_the_partial_name(tmp_path):
    path = write_video(tmp_path / "clip.mkv", _clip(3, 16))
    with av.open(str(path)) as container:
        assert "matroska" in container.format.name
        assert sum(1 for _ in container.decode(video=0)) == 3
    with pytest.raises(ValueError, match="output format"):
        write_video(tmp_path / "clip.unknown", _clip(3, 16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mkv"]
