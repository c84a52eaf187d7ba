"""Multi-view test clips (crops along the long side, view keys) and the clip data modules' test loader."""

import torch

from lfq_kit.data import SampleClipsDataModule, crop_view
from lfq_kit.data.transforms import ClipTransform


def test_three_crops_are_left_center_right_and_one_crop_is_the_validation_center():
    frames = (
        torch.arange(20, dtype=torch.uint8)[None, None, :, None].expand(2, 10, 20, 3).contiguous()
    )  # value = column
    left, center, right = (crop_view(frames, c, 3, 10) for c in range(3))
    to_col = lambda v: ((v[0, 0, 0] + 1) * 127.5).round().long().tolist()  # noqa: E731
    assert (
        to_col(left) == list(range(0, 10))
        and to_col(center) == list(range(5, 15))
        and to_col(right) == list(range(10, 20))
    )
    assert torch.equal(crop_view(frames, 0, 1, 10), ClipTransform(10, train=False)(frames))
    portrait = frames.transpose(1, 2).contiguous()  # 20 x 10: crops move down the rows
    assert ((crop_view(portrait, 2, 3, 10)[0, 0, :, 0] + 1) * 127.5).round().long().tolist() == list(range(10, 20))


def test_the_test_loader_gives_clips_times_crops_views_with_keys(tmp_path):
    dm = SampleClipsDataModule(
        frames_per_clip=5,
        resolution=16,
        batch_size=4,
        clips_per_video=2,
        test_clips_per_video=3,
        test_crops=3,
        manifest_dir=str(tmp_path),
    )
    dm.setup("test")
    batches = list(dm.test_dataloader())
    views = torch.cat([b["view_index"] for b in batches])
    videos = torch.cat([b["video_index"] for b in batches])
    assert views.tolist() == list(range(9)) and videos.tolist() == [0] * 9  # one held-out video, 3 x 3 views
    frames = torch.cat([b["frame_indices"][:, 0] for b in batches])
    assert frames[0::3].unique().numel() == 3 and (frames[0::3] == frames[1::3]).all()  # crops share their clip
    video = torch.cat([b["video"] for b in batches])
    assert not torch.equal(video[0], video[1])  # different crops
    # with one crop the test views equal the validation clips
    dm1 = SampleClipsDataModule(
        frames_per_clip=5, resolution=16, batch_size=4, clips_per_video=2, manifest_dir=str(tmp_path)
    )
    dm1.setup("fit")
    dm1.setup("test")
    val = next(iter(dm1.val_dataloader()))["video"]
    test = next(iter(dm1.test_dataloader()))["video"]
    assert torch.equal(val, test)
