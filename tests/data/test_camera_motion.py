"""The camera-motion task: window paths move as labelled, render real crops, and the splits use the right videos."""

import pytest
import torch

from lfq_kit.data import CAMERA_MOTIONS, CameraMotionDataModule, camera_path, render_path


def test_paths_move_the_window_as_their_label_says():
    h, w = 100, 200
    paths = {name: camera_path(i, 17, h, w, window=0.5, pan=0.25, zoom=0.75) for i, name in enumerate(CAMERA_MOTIONS)}
    step = 0.25 * 100 / 16  # pan per frame, in pixels
    for name, axis, sign in [("pan_left", 0, -1), ("pan_right", 0, 1), ("pan_up", 1, -1), ("pan_down", 1, 1)]:
        moved = paths[name][-1] - paths[name][0]
        assert moved[axis] == pytest.approx(sign * 16 * step) and moved[1 - axis] == 0 and moved[2] == 0
    assert (paths["static"] == paths["static"][0]).all()
    zin, zout = paths["zoom_in"][:, 2], paths["zoom_out"][:, 2]
    assert zin[0] == pytest.approx(50) and zin[-1] == pytest.approx(50 * 0.75) and (zin.diff() < 0).all()
    assert torch.allclose(zout, zin.flip(0))  # zoom out spans the same window sizes, growing
    for path in paths.values():  # every window stays inside the frame
        assert (path[:, 0] - path[:, 2] / 2 >= -1e-9).all() and (path[:, 0] + path[:, 2] / 2 <= w + 1e-9).all()
        assert (path[:, 1] - path[:, 2] / 2 >= -1e-9).all() and (path[:, 1] + path[:, 2] / 2 <= h + 1e-9).all()
    with pytest.raises(ValueError, match="spans .* more than the 200 x 100 frame"):
        camera_path(3, 80, h, w)


def test_a_static_window_renders_the_plain_crop():
    frames = torch.randint(0, 256, (3, 40, 60, 3), dtype=torch.uint8)
    path = camera_path(0, 3, 40, 60, window=0.5, ax=0.0, ay=0.0)  # 20 x 20 window at the top-left corner
    out = render_path(frames, path, 20)
    expected = frames[:, :20, :20].permute(3, 0, 1, 2).float() / 127.5 - 1
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_splits_views_and_labels():
    dm = CameraMotionDataModule(
        frames_per_clip=5,
        resolution=16,
        batch_size=7,
        clips_per_epoch=4,
        eval_segments=2,
        eval_video_frames=9,
        test_clips_per_video=2,
        test_crops=3,
    )
    assert dm.num_classes == 7 and dm.class_names[0] == "static"
    dm.setup("fit")
    dm.setup("test")
    assert [p.rsplit("/", 1)[1] for p in dm.train_set.paths] == ["bikes.mp4", "bigbuckbunny.mp4"]
    assert [p.rsplit("/", 1)[1] for p in dm.val_set.paths] == ["carphone_pristine.mp4"]
    assert len(dm.val_set) == 14 and len(dm.test_set) == 14 * 6
    batch = next(iter(dm.test_dataloader()))
    assert batch["video"].shape == (7, 3, 5, 16, 16)
    assert batch["video_index"].tolist() == [0] * 6 + [1] and batch["view_index"].tolist() == [0, 1, 2, 3, 4, 5, 0]
    assert batch["label"].tolist() == [0] * 7  # videos 0, 1: static, segments 0 and 1
    labels = torch.tensor([dm.test_set[i]["label"] for i in range(0, len(dm.test_set), 6)])
    assert labels.tolist() == [m for m in range(7) for _ in range(2)]
